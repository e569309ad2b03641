"""The monitor's JSON API: `GET /api/v1/pipelines[?provider=]`, `GET /api/v1/pipelines/{key}`
and `POST /api/v1/pipelines/{key}/retry` (token-protected).

Handlers never touch the network for reads: they hand out bytes the cache serialized at
sync time. Keys are `repo@branch`; the repo may contain slashes (`group/sub/app@main`).
Errors are ApiErrors, rendered by the app's one envelope.
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Depends
from fastapi.responses import Response

from conveyor.errors import UpstreamError, UpstreamRateLimited, UpstreamTimeout
from conveyor.monitor.service import Monitor
from conveyor.server.auth import require_read, require_write
from conveyor.server.errors import ApiError

__all__ = ["PROVIDERS", "build_router"]

PROVIDERS = ("gitlab", "github", "jenkins")
_JSON = "application/json"


def _unknown(key: str) -> ApiError:
    shown = key if len(key) <= 200 else key[:200] + "…"
    return ApiError(
        404,
        "not_found",
        f"No watched pipeline has the key {shown!r} "
        "(keys are repo@branch; GET /api/v1/pipelines lists them).",
    )


def build_router(monitor: Monitor) -> APIRouter:
    router = APIRouter(tags=["pipelines"], dependencies=[Depends(require_read)])

    @router.get("/api/v1/pipelines", response_class=Response)
    async def list_pipelines(provider: str | None = None) -> Response:
        """Every watched target's entry, in configuration order."""
        if provider is not None and provider not in PROVIDERS:
            raise ApiError(
                400,
                "bad_request",
                f"Unknown provider {provider[:40]!r} (use gitlab, github or jenkins).",
            )
        return Response(monitor.cache.list_body(provider), media_type=_JSON)

    @router.post(
        "/api/v1/pipelines/{key:path}/retry",
        status_code=202,
        response_class=Response,
        dependencies=[Depends(require_write)],
    )
    async def retry_pipeline(key: str) -> Response:
        """Ask the upstream for a new pipeline / workflow run / build of this target."""
        if key not in monitor.by_key:
            raise _unknown(key)
        try:
            await monitor.retry(key)
        except UpstreamRateLimited as exc:
            raise ApiError(429, "upstream_rate_limited", f"{key}: {exc.reason}.") from exc
        except UpstreamTimeout as exc:
            raise ApiError(504, "upstream_timeout", f"{key}: {exc.reason}.") from exc
        except UpstreamError as exc:
            raise ApiError(
                502, "upstream_error", f"{key}: the upstream refused ({exc.reason})."
            ) from exc
        return Response(
            orjson.dumps({"key": key, "requested": True}), status_code=202, media_type=_JSON
        )

    @router.get("/api/v1/pipelines/{key:path}", response_class=Response)
    async def get_pipeline(key: str) -> Response:
        """One target's entry: key, provider, repo, branch, pipelines, fetched_at, stale, error."""
        body = monitor.cache.body(key)
        if body is None:
            raise _unknown(key)
        return Response(body, media_type=_JSON)

    return router
