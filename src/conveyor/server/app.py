"""The ASGI application of `conveyor serve`: wiring only.

`create_app` puts settings, store, API token, queue and monitor on `app.state`, installs the
request frame (request id, body limit, deadline, last-resort 500, access event) and the one
error envelope for every error, includes the routers (health, webhooks, the runs API, the
files API of workers, the monitor's pipelines/metrics/cc.xml, the dashboard page, the web UI
under /ui) and runs the lifespan: start the run queue (recovering orphans, resuming
`pending` runs) and the monitor; on shutdown stop the monitor, stop the queue (grace, then
cancel), close the notifiers. The app is a
`ConveyorApp`: the monitor's reads and `GET /api/v1/runs/{id}` (when the store's reads are
local) are answered in front of the middleware stack by `middleware.answer_fast` (same
request id, auth, envelope and access event). It does not configure logging (serve does)
and does not open or close the store (the caller owns it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from conveyor.monitor.collector import Collector
from conveyor.monitor.service import Monitor
from conveyor.notify import build_notifications
from conveyor.runs.listeners import RunListener
from conveyor.runs.queue import RunQueue
from conveyor.runs.schedules import FileScheduleState, ScheduleLoop, fire_on
from conveyor.server import (
    cctray,
    dashboard,
    health,
    metrics,
    monitor_hooks,
    pipelines,
    runfiles,
    runs,
    schedules,
    webhooks,
    workers,
)
from conveyor.server.errors import install_error_handlers
from conveyor.server.middleware import (
    FastReads,
    RequestFrameMiddleware,
    answer_fast,
    bind_access_log,
)
from conveyor.server.ui import pages as ui_pages
from conveyor.settings import Settings
from conveyor.settings.monitor import resolve_hook_secret
from conveyor.store.base import RunStore

__all__ = ["ConveyorApp", "create_app"]


def create_app(
    settings: Settings,
    *,
    store: RunStore,
    env: Mapping[str, str],
    home: Path,
    listeners: Sequence[RunListener] = (),
    collector: Collector | None = None,
) -> FastAPI:
    """The app. `listeners` are told about runs in addition to the notifiers conveyor.toml
    configures (tests use it to observe runs). `collector`: the process's cyclic
    collector, handed to the monitor (`monitor.collector`; serve's own process only)."""
    notifications = build_notifications(settings, env, store)
    queue = RunQueue(
        settings, store=store, home=home, env=env, listeners=[notifications, *listeners]
    )
    monitor = Monitor(settings.monitor, env, store, collector=collector)
    hook_secret = resolve_hook_secret(settings.monitor, env)
    schedule_loop = ScheduleLoop(
        settings.schedules,
        fire_on(queue),
        FileScheduleState(home / "schedules.json"),
        queue.clock,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        bind_access_log()
        try:
            await queue.start()
            try:
                await monitor.start()
                await schedule_loop.start()
                yield
            finally:
                await schedule_loop.stop()
                await monitor.stop()
                await queue.stop()
        finally:
            await notifications.aclose()

    run_reads = runs.RunReads()
    fast = pipelines.fast_reads(monitor)
    if store.local_reads:  # a fast read cannot wait for a thread
        fast = fast.merged(run_reads.fast_reads())
    app = ConveyorApp(
        fast,
        # conveyor logs with structlog and exports Prometheus metrics; FastAPI's native
        # OpenTelemetry hooks would only cost a provider check per request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        title="conveyor",
        version=_version(),
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.store = store
    app.state.home = home
    app.state.api_token = settings.secrets.api_token
    app.state.public_read = settings.server.public_read
    app.state.queue = queue
    app.state.monitor = monitor
    app.state.schedules = schedule_loop
    app.state.notifications = notifications
    install_error_handlers(app)
    app.add_middleware(
        RequestFrameMiddleware,
        request_timeout_s=settings.server.request_timeout,
        max_body_bytes=settings.server.max_body_bytes,
    )
    app.include_router(health.build_router())
    app.include_router(webhooks.build_router())
    app.include_router(runs.build_router(run_reads))
    app.include_router(runfiles.build_router())
    app.include_router(schedules.build_router())
    app.include_router(workers.build_router())
    app.include_router(pipelines.build_router(monitor))
    app.include_router(monitor_hooks.build_router(monitor, hook_secret))
    app.include_router(metrics.build_router(monitor))
    app.include_router(cctray.build_router(monitor))
    app.include_router(dashboard.build_router())
    app.include_router(ui_pages.build_router(monitor))
    return app


class ConveyorApp(FastAPI):
    """The FastAPI app with a fast path in front of it: the monitor's reads that dashboards
    poll (`pipelines.fast_reads`) and `GET /api/v1/runs/{id}` (`runs.RunReads`, for a store
    with local reads) are answered by `middleware.answer_fast` — same request id, auth,
    envelope and access event — without the middleware stack and the routing."""

    def __init__(self, fast_reads: FastReads, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fast_reads = fast_reads

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            read = self.fast_reads.match(scope["path"])
            if read is not None:
                scope["app"] = self
                await answer_fast(read, scope, send)
                return
        await super().__call__(scope, receive, send)


def _version() -> str:
    try:
        return version("conveyor")
    except PackageNotFoundError:
        return "0"
