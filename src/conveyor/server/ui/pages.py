"""The web UI's routes: pages under `/ui/`, the fragments htmx swaps into them, the static
files, and `GET /` (307 to the runs page).

A page is a shell rendered from `templates/` with no data in it, so a browser can load it
without the API token; its fragments (`/ui/f/...`) are HTML rendered from the store and the
monitor cache and need the read token like the JSON API (`static/ui.js` adds it as
`Authorization: Bearer` to every htmx request from the tab's sessionStorage; it never goes
into a URL or the HTML). Buttons and the log viewer talk to the JSON API directly.

Every answer carries a Content-Security-Policy without 'unsafe-inline' or 'unsafe-eval':
scripts and styles come only from `/ui/static/`. Templates autoescape every value. This
module must not run jobs, write to the store or reach the network.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any, NamedTuple
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Depends, Query
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from conveyor.model import EventKind, RunRecord, Status
from conveyor.monitor.service import Monitor
from conveyor.server.auth import require_read
from conveyor.server.errors import ApiError
from conveyor.server.runreads import run_not_found
from conveyor.server.ui import views
from conveyor.server.ui.graph import BOX_H, BOX_W, job_graph
from conveyor.store.base import RunRecords
from conveyor.store.paths import is_valid_run_id

__all__ = ["CSP", "HTMX", "PAGE_SIZE", "STATIC_FILES", "UI_PREFIX", "build_router", "templates"]

UI_PREFIX = "/ui"
HTMX = "htmx-2.0.4.min.js"
STATIC_FILES: Mapping[str, str] = {
    HTMX: "text/javascript; charset=utf-8",
    "ui.js": "text/javascript; charset=utf-8",
    "ui.css": "text/css; charset=utf-8",
}
PAGE_SIZE = 25
# Scanned at most per fragment when filtering by event (the store filters repo, ref and
# status itself; event is filtered here).
_EVENT_SCAN_LIMIT = 2000
CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "img-src 'self' data:",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def templates() -> Environment:
    env = Environment(
        loader=PackageLoader("conveyor.server.ui", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        icon=views.status_icon,
        duration=views.duration_text,
        age=views.age_text,
        short_sha=views.short_sha,
        job_path=views.job_path,
        anchor=views.job_anchor,
        job_actions=views.job_actions,
        run_actions=views.run_actions,
        safe_link=views.safe_link,
        htmx=HTMX,
        box_w=BOX_W,
        box_h=BOX_H,
    )
    return env


def _html(text: str, status_code: int = 200) -> Response:
    return Response(
        text, status_code=status_code, media_type="text/html; charset=utf-8", headers=_HEADERS
    )


def _root(request: Request) -> str:
    # root_path keeps links inside a reverse proxy's prefix.
    root: str = request.scope.get("root_path", "")
    return root


def _store(request: Request) -> RunRecords:
    store: RunRecords = request.app.state.store
    return store


def _runs_page(store: RunRecords, filters: Mapping[str, Any], offset: int) -> dict[str, Any]:
    """One page of runs with their jobs, and the offset of the next page (None on the last).
    Runs without the wanted event are skipped, scanning at most _EVENT_SCAN_LIMIT runs."""
    event = filters.get("event")
    query = {key: filters.get(key) for key in ("repo", "ref", "status")}
    found: list[RunRecord] = []
    position = offset
    while len(found) <= PAGE_SIZE and position - offset < _EVENT_SCAN_LIMIT:
        chunk = store.list_runs(**query, limit=200 if event else PAGE_SIZE + 1, offset=position)
        for run in chunk:
            if len(found) == PAGE_SIZE:
                break
            position += 1
            if event is None or run.event == event:
                found.append(run)
        if len(chunk) < (200 if event else PAGE_SIZE + 1) or len(found) == PAGE_SIZE:
            break
    has_more = bool(store.list_runs(**query, limit=1, offset=position))
    full = [store.get_run(run.run_id) or run for run in found]
    return {"runs": full, "next_offset": position if has_more else None}


def _query_text(filters: Mapping[str, Any], offset: int) -> str:
    pairs = {key: str(value) for key, value in filters.items() if value}
    if offset:
        pairs["offset"] = str(offset)
    return urlencode(pairs)


class RunFilters(NamedTuple):
    """The runs list's query: what the page and its fragment both read."""

    repo: str
    ref: str
    status: Status | None
    event: EventKind | None
    offset: int


def run_filters(
    repo: str = "",
    ref: str = "",
    status: Status | None = None,
    event: EventKind | None = None,
    offset: int = Query(0, ge=0, le=1_000_000_000),
) -> RunFilters:
    return RunFilters(repo, ref, status, event, offset)


_RUN_FILTERS = Depends(run_filters)


def build_router(monitor: Monitor | None = None) -> APIRouter:
    env = templates()
    static = {
        name: files("conveyor.server.ui").joinpath("static", name).read_bytes()
        for name in STATIC_FILES
    }
    router = APIRouter(include_in_schema=False)

    def page(request: Request, template: str, **context: Any) -> Response:
        return _html(env.get_template(template).render(root=_root(request), **context))

    @router.get("/")
    async def home(request: Request) -> RedirectResponse:
        return RedirectResponse(_root(request) + UI_PREFIX + "/runs", 307)

    @router.get(UI_PREFIX + "/static/{name}")
    async def static_file(name: str) -> Response:
        if name not in static:
            raise ApiError(404, "not_found", f"No static file {name[:80]!r}.")
        headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}
        return Response(static[name], media_type=STATIC_FILES[name], headers=headers)

    @router.get(UI_PREFIX + "/runs")
    async def runs_page(request: Request, asked: RunFilters = _RUN_FILTERS) -> Response:
        filters = {
            "repo": asked.repo,
            "ref": asked.ref,
            "status": asked.status or "",
            "event": asked.event or "",
        }
        return page(
            request,
            "runs.html",
            filters=filters,
            statuses=list(Status),
            events=list(EventKind),
            fragment_query=_query_text(filters, asked.offset),
        )

    @router.get(UI_PREFIX + "/runs/{run_id}")
    async def run_page(request: Request, run_id: str) -> Response:
        if not is_valid_run_id(run_id):
            raise run_not_found(run_id)
        return page(request, "run.html", run_id=run_id)

    @router.get(UI_PREFIX + "/runs/{run_id}/jobs/{job:path}/log")
    async def log_page(request: Request, run_id: str, job: str) -> Response:
        if not is_valid_run_id(run_id):
            raise run_not_found(run_id)
        return page(request, "log.html", run_id=run_id, job=job)

    @router.get(UI_PREFIX + "/monitor")
    async def monitor_page(request: Request) -> Response:
        return page(request, "monitor.html")

    @router.get(UI_PREFIX + "/f/runs")
    async def runs_fragment(request: Request, asked: RunFilters = _RUN_FILTERS) -> Response:
        require_read(request)
        offset = asked.offset
        filters = {
            "repo": asked.repo or None,
            "ref": asked.ref or None,
            "status": asked.status,
            "event": asked.event,
        }
        shown = await asyncio.to_thread(_runs_page, _store(request), filters, offset)
        nav = {key: value for key, value in filters.items() if value}
        return page(
            request,
            "_runs.html",
            now=datetime.now(UTC),
            next_query=_query_text(nav, shown["next_offset"] or 0),
            prev_query=_query_text(nav, max(0, offset - PAGE_SIZE)) if offset else None,
            **shown,
        )

    @router.get(UI_PREFIX + "/f/runs/{run_id}")
    async def run_fragment(request: Request, run_id: str) -> Response:
        require_read(request)
        if not is_valid_run_id(run_id):
            raise run_not_found(run_id)
        run = await asyncio.to_thread(_store(request).get_run, run_id)
        if run is None:
            raise run_not_found(run_id)
        stages = views.group_by_stage(run.jobs)
        return page(
            request,
            "_run.html",
            run=run,
            stages=stages,
            graph=job_graph(stages),
            facts=views.trigger_facts(run),
            now=datetime.now(UTC),
        )

    @router.get(UI_PREFIX + "/f/monitor")
    async def monitor_fragment(request: Request) -> Response:
        require_read(request)
        body = monitor.cache.list_body(None) if monitor is not None else b"[]"
        return page(request, "_monitor.html", entries=orjson.loads(body))

    return router
