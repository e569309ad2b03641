"""The monitor's JSON API: `GET /api/v1/pipelines[?provider=]`, `GET /api/v1/pipelines/{key}`,
`GET /api/v1/pipelines/{key}/history[?limit=&before=]` and `POST /api/v1/pipelines/{key}/retry`
(token-protected).

Handlers never touch the network or the store for reads: they hand out bytes the cache
serialized at sync time, or a page of the target's history kept in memory. Keys are
`repo@branch`; the repo may contain slashes (`group/sub/app@main`), and so may the branch:
a path that is a watched key is that entry, else one ending in `/history` is the history of
the key before it. Errors are ApiErrors, rendered by the app's one envelope.
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Depends
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from conveyor.errors import UpstreamError, UpstreamRateLimited, UpstreamTimeout
from conveyor.monitor.health import pipeline_duration_s
from conveyor.monitor.service import Monitor
from conveyor.records import format_ts
from conveyor.server.auth import require_write
from conveyor.server.errors import ApiError
from conveyor.server.middleware import FastRead, FastReads, require_read_scope
from conveyor.store.base import HistoryRecord

__all__ = ["PROVIDERS", "build_reads", "build_router", "fast_reads"]

PROVIDERS = ("gitlab", "github", "jenkins")
_JSON = "application/json"
_LIST_PATH = "/api/v1/pipelines"
_ENTRY_PREFIX = "/api/v1/pipelines/"
_HISTORY_SUFFIX = "/history"
HISTORY_PAGE = 20  # pipelines per history page unless ?limit= says otherwise
HISTORY_PAGE_MAX = 100


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
        if body is not None:
            return body
        watched = key.removesuffix(_HISTORY_SUFFIX)
        if watched != key and watched in monitor.by_key:
            return _history_page(monitor, watched, scope["query_string"])
        raise _unknown(key)

    return list_pipelines, get_pipeline


def _history_page(monitor: Monitor, key: str, query: bytes) -> bytes:
    """One page of `key`'s kept pipelines, newest first: `limit` of them (default 20, at most
    100) with ids below `before`; `next_before` is the `before` of the next page."""
    params = QueryParams(query) if query else QueryParams()
    limit = _int_param(params.get("limit"), "limit", None, maximum=HISTORY_PAGE_MAX) or HISTORY_PAGE
    before = _int_param(params.get("before"), "before", None, maximum=2**63 - 1)
    records = monitor.history.records(key)
    if before is not None:
        records = tuple(r for r in records if r.pipeline_id < before)
    page = records[:limit]
    more = len(records) > limit
    return orjson.dumps(
        {
            "key": key,
            "kept": len(monitor.history.records(key)),
            "pipelines": [_history_item(r) for r in page],
            "next_before": page[-1].pipeline_id if more else None,
        }
    )


def _int_param(raw: str | None, name: str, default: int | None, *, maximum: int) -> int | None:
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise ApiError(400, "bad_request", f"?{name}= must be a whole number from 1 to {maximum}.")
    return int(raw)


def _history_item(record: HistoryRecord) -> dict[str, object]:
    return {
        "id": record.pipeline_id,
        "status": str(record.status),
        "sha": record.sha,
        "web_url": record.web_url,
        "created_at": format_ts(record.created_at),
        "started_at": format_ts(record.started_at),
        "finished_at": format_ts(record.finished_at),
        "duration_s": pipeline_duration_s(record),
    }


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
