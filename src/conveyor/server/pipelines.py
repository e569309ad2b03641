"""The monitor's JSON API: `GET /api/v1/pipelines[?provider=]`, `GET /api/v1/pipelines/{key}`
and `POST /api/v1/pipelines/{key}/retry` (token-protected).

Handlers never touch the network for reads: they hand out bytes the cache serialized at
sync time. Keys are `repo@branch`; the repo may contain slashes (`group/sub/app@main`).
Errors are ApiErrors, rendered by the app's one envelope.
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

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
    router = APIRouter(tags=["pipelines"])

    # The two reads are plain Starlette routes: FastAPI's parameter and dependency machinery
    # cost 2.8x the throughput of handing out bytes (bench/monitor_api.py), and these are
    # the endpoints dashboards poll. They are documented in docs/api.md, not in OpenAPI.
    async def list_pipelines(request: Request) -> Response:
        """Every watched target's entry, in configuration order (`?provider=` filters)."""
        require_read(request)
        provider = request.query_params.get("provider")
        if provider is not None and provider not in PROVIDERS:
            raise ApiError(
                400,
                "bad_request",
                f"Unknown provider {provider[:40]!r} (use gitlab, github or jenkins).",
            )
        return Response(monitor.cache.list_body(provider), media_type=_JSON)

    async def get_pipeline(request: Request) -> Response:
        """One entry: key, provider, repo, branch, pipelines, fetched_at, stale, error."""
        require_read(request)
        key = request.path_params["key"]
        body = monitor.cache.body(key)
        if body is None:
            raise _unknown(key)
        return Response(body, media_type=_JSON)

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

    router.add_route("/api/v1/pipelines", list_pipelines, methods=["GET"])
    router.add_route("/api/v1/pipelines/{key:path}", get_pipeline, methods=["GET"])
    return router
