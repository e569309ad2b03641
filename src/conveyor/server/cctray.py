"""`GET /cc.xml`: the monitor cache in the CCTray format, for CCMenu, Nevergreen and build
lights: `<Projects><Project name activity lastBuildStatus lastBuildLabel lastBuildTime
webUrl/></Projects>`.

`render_cctray` is pure (entries -> bytes). The route renders once per published cache
version and hands out the same bytes until the next sync; it never touches the network.
"""

from __future__ import annotations

from collections.abc import Iterable
from xml.etree import ElementTree

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from conveyor.model import Status
from conveyor.monitor.cache import CacheEntry
from conveyor.monitor.service import Monitor
from conveyor.records import format_ts
from conveyor.server.auth import require_read

__all__ = ["BUILD_STATUS", "build_router", "render_cctray"]

BUILD_STATUS: dict[Status, str] = {
    Status.SUCCESS: "Success",
    Status.FAILED: "Failure",
}
_NO_TIME = "1970-01-01T00:00:00.000Z"


def _project(entry: CacheEntry) -> dict[str, str]:
    latest = entry.latest
    finished = next((p for p in entry.pipelines if p.status.is_final), None)
    last_time = None
    if finished is not None:
        last_time = format_ts(finished.updated_at or finished.created_at)
    shown = finished or latest
    return {
        "name": entry.key,
        "activity": "Building" if latest and latest.status == Status.RUNNING else "Sleeping",
        "lastBuildStatus": BUILD_STATUS.get(finished.status, "Unknown") if finished else "Unknown",
        "lastBuildLabel": str(finished.id) if finished else "",
        "lastBuildTime": last_time or _NO_TIME,
        "webUrl": shown.web_url if shown else "",
    }


def render_cctray(entries: Iterable[CacheEntry]) -> bytes:
    root = ElementTree.Element("Projects")
    for entry in entries:
        ElementTree.SubElement(root, "Project", _project(entry))
    xml: bytes = ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)
    return xml


def build_router(monitor: Monitor) -> APIRouter:
    router = APIRouter(tags=["monitor"], dependencies=[Depends(require_read)])
    rendered: dict[str, tuple[int, bytes]] = {}

    @router.get("/cc.xml", response_class=Response)
    async def cctray() -> Response:
        """The watched pipelines as a CCTray feed."""
        version = monitor.cache.version
        cached = rendered.get("xml")
        if cached is None or cached[0] != version:
            cached = (version, render_cctray(monitor.cache.entries()))
            rendered["xml"] = cached
        return Response(cached[1], media_type="application/xml")

    return router
