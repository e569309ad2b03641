"""cc.xml rendering: one Project per target with CCTray's attribute words."""

from __future__ import annotations

from datetime import UTC, datetime
from xml.etree import ElementTree

from conveyor.model import Status
from conveyor.monitor.cache import make_entry
from conveyor.monitor.validate import PipelineView
from conveyor.server.cctray import render_cctray

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _view(n: int, status: Status) -> PipelineView:
    return PipelineView(n, status, "main", None, f"https://x.example/{n}", T0, T0, None)


def _project(*views: PipelineView) -> dict[str, str]:
    entry = make_entry(
        provider="github",
        repo="o/<r>&",
        branch="main",
        pipelines=views,
        fetched_at=T0,
        error=None,
        is_stale=False,
    )
    root = ElementTree.fromstring(render_cctray([entry]))  # noqa: S314 - our own output
    assert root.tag == "Projects"
    return dict(root[0].attrib)


def test_cctray_running_over_a_failure_is_building_failure() -> None:
    expected = {
        "name": "o/<r>&@main",
        "activity": "Building",
        "lastBuildStatus": "Failure",
        "lastBuildLabel": "1",
        "lastBuildTime": "2026-11-23T12:00:00.000Z",
        "webUrl": "https://x.example/1",
    }
    assert expected == _project(_view(2, Status.RUNNING), _view(1, Status.FAILED))


def test_cctray_success_is_sleeping_success() -> None:
    project = _project(_view(3, Status.SUCCESS))
    assert (
        project["activity"],
        project["lastBuildStatus"],
        project["lastBuildLabel"],
    ) == ("Sleeping", "Success", "3")


def test_cctray_without_pipelines_is_unknown() -> None:
    project = _project()
    assert (
        project["activity"],
        project["lastBuildStatus"],
        project["lastBuildLabel"],
        project["webUrl"],
    ) == ("Sleeping", "Unknown", "", "")
