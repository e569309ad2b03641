"""The monitor's JSON API: `GET /api/v1/pipelines[?provider=]`, `GET /api/v1/pipelines/{key}`
and `POST /api/v1/pipelines/{key}/retry` (token-protected).

Handlers never touch the network for reads: they hand out bytes the cache serialized at
sync time. Keys are `repo@branch`; the repo may contain slashes (`group/sub/app@main`).
Errors are ApiErrors, rendered by the app's one envelope.
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Depends
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from conveyor.errors import UpstreamError, UpstreamRateLimited, UpstreamTimeout
from conveyor.monitor.service import Monitor
from conveyor.server.auth import require_write
from conveyor.server.errors import ApiError
from conveyor.server.middleware import FastRead, FastReads, require_read_scope

__all__ = ["PROVIDERS", "build_reads", "build_router", "fast_reads"]

PROVIDERS = ("gitlab", "github", "jenkins")
_JSON = "application/json"
_LIST_PATH = "/api/v1/pipelines"
_ENTRY_PREFIX = "/api/v1/pipelines/"


def _unknown(key: str) -> ApiError:
    shown = key if len(key) <= 200 else key[:200] + "…"
    return ApiError(
        404,
        "not_found",
        f"No watched pipeline has the key {shown!r} "
        "(keys are repo@branch; GET /api/v1/pipelines lists them).",
    )


def build_reads(monitor: Monitor) -> tuple[FastRead, FastRead]:
    """The two reads as plain functions of the request's ASGI scope: the list and one
    entry. They check `require_read` (over the scope: `middleware.require_read_scope`),
    raise ApiError and return the cached bytes; the routes below and the app's fast path
    (`fast_reads`) both serve them."""

    def list_pipelines(scope: Scope) -> bytes:
        """Every watched target's entry, in configuration order (`?provider=` filters)."""
        require_read_scope(scope)
        query: bytes = scope["query_string"]
        provider = QueryParams(query).get("provider") if query else None
        if provider is not None and provider not in PROVIDERS:
            raise ApiError(
                400,
                "bad_request",
                f"Unknown provider {provider[:40]!r} (use gitlab, github or jenkins).",
            )
        return monitor.cache.list_body(provider)

    def get_pipeline(scope: Scope) -> bytes:
        """One entry: key, provider, repo, branch, pipelines, fetched_at, stale, error."""
        require_read_scope(scope)
        params = scope.get("path_params")  # None on the fast path: no routing
        key = str(params["key"] if params is not None else scope["path"][len(_ENTRY_PREFIX) :])
        body = monitor.cache.body(key)
        if body is None:
            raise _unknown(key)
        return body

    return list_pipelines, get_pipeline


def fast_reads(monitor: Monitor) -> FastReads:
    """The reads dashboards poll, for the app's fast path (`server.middleware`): GET of
    `/api/v1/pipelines` (exact) and of `/api/v1/pipelines/{key}` (prefix)."""
    list_pipelines, get_pipeline = build_reads(monitor)
    return FastReads(exact={_LIST_PATH: list_pipelines}, prefixes=((_ENTRY_PREFIX, get_pipeline),))


def build_router(monitor: Monitor) -> APIRouter:
    router = APIRouter(tags=["pipelines"])
    read_list, read_entry = build_reads(monitor)

    # The two reads are plain Starlette routes: FastAPI's parameter and dependency machinery
    # cost 2.8x the throughput of handing out bytes (bench/monitor_api.py), and these are
    # the endpoints dashboards poll. They are documented in docs/api.md, not in OpenAPI.
    # Inside `conveyor serve` the same functions are answered by the fast path in front of
    # the routing (`fast_reads`); these routes serve apps built without it.
    async def list_pipelines(request: Request) -> Response:
        return Response(read_list(request.scope), media_type=_JSON)

    async def get_pipeline(request: Request) -> Response:
        return Response(read_entry(request.scope), media_type=_JSON)

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

    router.add_route(_LIST_PATH, list_pipelines, methods=["GET"])
    router.add_route(_ENTRY_PREFIX + "{key:path}", get_pipeline, methods=["GET"])
    return router
