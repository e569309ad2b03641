"""server.ui.views: what the web UI's templates show, from records (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from conveyor.model import EventKind, JobRecord, RunRecord, Status
from conveyor.server.ui import views

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def run_of(status: Status, *jobs: JobRecord, trigger: dict[str, object] | None = None) -> RunRecord:
    return RunRecord(
        run_id="20261123T120000000Z-abcdefgh",
        repo="acme/app",
        ref="main",
        sha="a" * 40,
        event=EventKind.PUSH,
        status=status,
        created_at=T0,
        jobs=jobs,
        trigger=trigger or {},
    )


def job(name: str, stage: str, status: Status) -> JobRecord:
    return JobRecord(name=name, stage=stage, status=status)


def test_views_every_status_has_a_distinct_icon() -> None:
    icons = [views.status_icon(str(status)) for status in Status]
    assert len(set(icons)) == len(Status)
    assert views.status_icon("exploded") == "?"


def test_views_duration_text_reads_in_the_largest_units() -> None:
    assert [views.duration_text(s) for s in (None, 3.21, 42, 65, 3725)] == [
        "",
        "3.2s",
        "42s",
        "1m 05s",
        "1h 02m",
    ]


def test_views_age_text_counts_back_from_now() -> None:
    ages = [views.age_text(T0 - timedelta(seconds=s), T0) for s in (5, 120, 7200, 172800)]
    assert ages == ["5s ago", "2m ago", "2h ago", "2d ago"]
    assert views.age_text(None, T0) == ""


def test_views_group_by_stage_keeps_the_plan_order() -> None:
    stages = views.group_by_stage(
        [
            job("b", "build", Status.SUCCESS),
            job("t", "test", Status.FAILED),
            job("c", "build", Status.SUCCESS),
        ]
    )
    assert [(s.name, [j.name for j in s.jobs]) for s in stages] == [
        ("build", ["b", "c"]),
        ("test", ["t"]),
    ]


def test_views_manual_job_offers_play_unless_the_run_was_canceled() -> None:
    deploy = job("deploy", "release", Status.MANUAL)
    assert views.job_actions(run_of(Status.SUCCESS, deploy), deploy) == ("play",)
    assert views.job_actions(run_of(Status.CANCELED, deploy), deploy) == ()


def test_views_failed_or_canceled_job_offers_retry_unless_the_run_was_canceled() -> None:
    unit = job("unit", "test", Status.FAILED)
    stopped = job("lint", "test", Status.CANCELED)
    passed = job("build", "build", Status.SUCCESS)
    assert views.job_actions(run_of(Status.FAILED, unit), unit) == ("retry",)
    assert views.job_actions(run_of(Status.RUNNING, unit), unit) == ("retry",)
    assert views.job_actions(run_of(Status.FAILED, stopped), stopped) == ("retry",)
    assert views.job_actions(run_of(Status.SUCCESS, passed), passed) == ()
    assert views.job_actions(run_of(Status.CANCELED, unit), unit) == ()


def test_views_run_offers_cancel_while_it_runs_and_retry_once_it_failed() -> None:
    assert views.run_actions(run_of(Status.RUNNING)) == ("cancel",)
    assert views.run_actions(run_of(Status.PENDING)) == ("cancel",)
    assert views.run_actions(run_of(Status.SUCCESS)) == ()
    assert views.run_actions(run_of(Status.FAILED)) == ("retry",)
    assert views.run_actions(run_of(Status.CANCELED)) == ("retry",)


def test_views_job_path_encodes_spaces_brackets_and_slashes() -> None:
    assert views.job_path("r", "test [PY=3.12]/x") == "r/jobs/test%20%5BPY%3D3.12%5D%2Fx"
    assert views.job_anchor("deploy/prod") == "job-deploy%2Fprod"


def test_views_safe_link_keeps_only_http_urls() -> None:
    assert views.safe_link("https://gitlab.example.com/p/1") == "https://gitlab.example.com/p/1"
    assert views.safe_link("javascript:alert(1)") is None
    assert views.safe_link(None) is None


def test_views_trigger_facts_show_the_commit_and_the_request() -> None:
    run = run_of(
        Status.SUCCESS,
        trigger={"message": "fix the build\n\nlong body", "change": {"number": 7, "title": "Fix"}},
    )
    assert views.trigger_facts(run) == (
        ("event", "push"),
        ("ref", "main"),
        ("sha", "a" * 40),
        ("commit", "fix the build"),
        ("request", "#7 Fix"),
    )
