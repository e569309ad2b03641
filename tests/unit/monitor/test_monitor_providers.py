"""Providers' pure halves: payload -> PipelineView, status mapping, what is shown."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conveyor.model import Status
from conveyor.monitor.providers.base import keep_shown, parse_records
from conveyor.monitor.providers.github import parse_run
from conveyor.monitor.providers.gitlab import parse_pipeline
from conveyor.monitor.providers.jenkins import TREE, job_path, parse_build, target_path
from conveyor.monitor.validate import Invalid, PipelineView
from conveyor.settings.monitor import Target

SHA = "ab" * 20
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _gitlab(**overrides: Any) -> dict[str, Any]:
    return {
        "id": 7,
        "status": "success",
        "ref": "main",
        "sha": SHA,
        "web_url": "https://gl.example/p/-/pipelines/7",
        "created_at": "2026-11-23T12:00:00.000Z",
        "updated_at": "2026-11-23T12:03:00.000Z",
        "user": {"email": "x@example.com"},
        **overrides,
    }


def _github(**overrides: Any) -> dict[str, Any]:
    return {
        "id": 9,
        "status": "completed",
        "conclusion": "success",
        "head_branch": "main",
        "head_sha": SHA,
        "html_url": "https://gh.example/o/r/actions/runs/9",
        "created_at": "2026-11-23T12:00:00Z",
        "updated_at": "2026-11-23T12:02:00Z",
        "run_started_at": "2026-11-23T12:00:30Z",
        **overrides,
    }


def _jenkins(**overrides: Any) -> dict[str, Any]:
    return {
        "number": 3,
        "result": "SUCCESS",
        "building": False,
        "url": "https://j.example/job/a/3/",
        "timestamp": int(T0.timestamp() * 1000),
        "duration": 90_000,
        "actions": [{}, {"lastBuiltRevision": {"SHA1": SHA}}],
        **overrides,
    }


def test_gitlab_parse_pipeline_maps_fields() -> None:
    expected = PipelineView(
        7,
        Status.SUCCESS,
        "main",
        SHA,
        "https://gl.example/p/-/pipelines/7",
        T0,
        T0 + timedelta(minutes=3),
        180.0,
        finished_at=T0 + timedelta(minutes=3),  # no finished_at given: the last update
    )
    assert expected == parse_pipeline(_gitlab())


def test_providers_give_the_start_and_end_the_history_keeps() -> None:
    started, finished = T0 + timedelta(seconds=20), T0 + timedelta(minutes=2)
    gitlab = parse_pipeline(
        _gitlab(started_at=started.isoformat(), finished_at=finished.isoformat())
    )
    assert (started, finished) == (gitlab.started_at, gitlab.finished_at)
    assert parse_pipeline(_gitlab(status="running")).finished_at is None
    build = parse_build("main", _jenkins())
    assert (T0, T0 + timedelta(seconds=90)) == (build.started_at, build.finished_at)
    assert parse_build("main", _jenkins(building=True, result=None)).finished_at is None


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("created", Status.PENDING),
        ("waiting_for_resource", Status.PENDING),
        ("preparing", Status.PENDING),
        ("scheduled", Status.PENDING),
        ("running", Status.RUNNING),
        ("failed", Status.FAILED),
        ("canceled", Status.CANCELED),
        ("skipped", Status.SKIPPED),
        ("manual", Status.MANUAL),
    ],
)
def test_gitlab_statuses_map_onto_design_words(raw: str, status: Status) -> None:
    assert status == parse_pipeline(_gitlab(status=raw)).status


def test_gitlab_running_pipeline_has_no_duration() -> None:
    assert parse_pipeline(_gitlab(status="running")).duration_s is None


@pytest.mark.parametrize(
    ("status", "conclusion", "expected"),
    [
        ("in_progress", None, Status.RUNNING),
        ("queued", None, Status.PENDING),
        ("completed", "success", Status.SUCCESS),
        ("completed", "failure", Status.FAILED),
        ("completed", "timed_out", Status.FAILED),
        ("completed", "cancelled", Status.CANCELED),
        ("completed", "skipped", Status.SKIPPED),
        ("completed", "action_required", Status.MANUAL),
    ],
)
def test_github_status_and_conclusion_map(
    status: str, conclusion: str | None, expected: Status
) -> None:
    assert expected == parse_run(_github(status=status, conclusion=conclusion)).status


def test_github_duration_runs_from_start_to_update() -> None:
    assert parse_run(_github()).duration_s == 90.0


def test_github_unknown_conclusion_is_invalid() -> None:
    with pytest.raises(Invalid):
        parse_run(_github(conclusion="exploded"))


@pytest.mark.parametrize(
    ("overrides", "status"),
    [
        ({"building": True, "result": None}, Status.RUNNING),
        ({"result": "FAILURE"}, Status.FAILED),
        ({"result": "UNSTABLE"}, Status.FAILED),
        ({"result": "ABORTED"}, Status.CANCELED),
        ({"result": "NOT_BUILT"}, Status.SKIPPED),
        ({"result": None}, Status.PENDING),
    ],
)
def test_jenkins_results_map(overrides: dict[str, Any], status: Status) -> None:
    assert status == parse_build("main", _jenkins(**overrides)).status


def test_jenkins_build_takes_sha_from_git_action_and_ref_from_target() -> None:
    view = parse_build("release", _jenkins())
    assert (view.ref, view.sha, view.duration_s, view.id) == ("release", SHA, 90.0, 3)


def test_jenkins_build_without_git_has_no_sha() -> None:
    assert parse_build("main", _jenkins(actions=[{}])).sha is None


def test_jenkins_job_path_and_tree() -> None:
    assert job_path("folder/app x/main") == "/job/folder/job/app%20x/job/main"
    assert TREE.endswith("{0,5}") and TREE.startswith("builds[number,url,result,building")


@pytest.mark.parametrize(
    ("repo", "branch", "job", "path"),
    [
        ("team/app", "main", None, "/job/team/job/app/job/main"),
        ("team/app", "feature/x", None, "/job/team/job/app/job/feature%252Fx"),
        ("team/app", "50%", None, "/job/team/job/app/job/50%2525"),
        ("folder/app", "main", "folder/app", "/job/folder/job/app"),
    ],
)
def test_jenkins_target_path_multibranch_or_plain(
    repo: str, branch: str, job: str | None, path: str
) -> None:
    target = Target("jenkins", repo, branch, "https://j.example", job=job)
    assert path == target_path(target)


def test_parse_records_drops_and_counts_invalid() -> None:
    views, dropped = parse_records([_gitlab(), _gitlab(sha="nope"), "junk"], parse_pipeline)
    assert ([v.id for v in views], dropped) == ([7], 2)


def test_parse_records_all_invalid_fails_the_fetch() -> None:
    with pytest.raises(Invalid, match="all 2 records"):
        parse_records([_gitlab(ref="a..b"), _gitlab(web_url="file:///etc")], parse_pipeline)


def test_parse_records_needs_a_list() -> None:
    with pytest.raises(Invalid):
        parse_records({"pipelines": []}, parse_pipeline)


def _view(n: int, status: Status, minute: int) -> PipelineView:
    at = T0 + timedelta(minutes=minute)
    return PipelineView(n, status, "main", SHA, "https://x.example/", at, at, None)


def test_keep_shown_filters_dedupes_orders_and_limits() -> None:
    views = [
        _view(1, Status.SUCCESS, 1),
        _view(2, Status.PENDING, 2),
        _view(3, Status.CANCELED, 3),
        _view(4, Status.RUNNING, 4),
        _view(4, Status.SUCCESS, 0),
    ] + [_view(10 + n, Status.FAILED, -n) for n in range(5)]
    assert [v.id for v in keep_shown(views, include_canceled=False)] == [4, 1, 10, 11, 12]
    assert [v.id for v in keep_shown(views, include_canceled=True)] == [4, 3, 1, 10, 11]
    assert keep_shown(views, include_canceled=False)[0].status == Status.RUNNING


records = st.dictionaries(
    st.sampled_from(
        [
            "id",
            "number",
            "status",
            "conclusion",
            "ref",
            "head_branch",
            "sha",
            "head_sha",
            "web_url",
            "html_url",
            "url",
            "created_at",
            "updated_at",
            "timestamp",
            "duration",
            "building",
            "result",
            "actions",
        ]
    ),
    st.none() | st.booleans() | st.integers() | st.text(max_size=50) | st.lists(st.integers()),
)


@given(records)
def test_parsers_never_raise_anything_but_invalid(item: dict[str, Any]) -> None:
    for parse in (parse_pipeline, parse_run, lambda i: parse_build("main", i)):
        with contextlib.suppress(Invalid):
            parse(item)
