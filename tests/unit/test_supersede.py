"""Which older runs a new run supersedes, and when they are canceled (runs.supersede)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from conveyor.config.native import parse_native
from conveyor.model import EventKind, Job, JobRecord, Mark, Pipeline, RunRecord, Status
from conveyor.runs.supersede import (
    AutoCancel,
    auto_cancel_mode,
    line_of_work,
    older_runs,
    should_cancel,
)
from tests.unit.gitlab.helpers import errors_of, parse

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
MARK = Mark(".conveyor.yml", 1, 1)


def _run(
    run_id: str,
    *,
    event: EventKind = EventKind.PUSH,
    ref: str = "main",
    at: int = 0,
    status: Status = Status.PENDING,
    number: int | None = None,
    repo: str = "acme/app",
) -> RunRecord:
    trigger: dict[str, object] = {}
    if number is not None:
        trigger["change"] = {"number": number}
    return RunRecord(
        run_id=run_id,
        repo=repo,
        ref=ref,
        sha="a" * 40,
        event=event,
        status=status,
        created_at=T0 + timedelta(seconds=at),
        trigger=trigger,
    )


def _job(name: str, status: Status, *, started: bool) -> JobRecord:
    return JobRecord(name=name, stage="test", status=status, started_at=T0 if started else None)


def _pipeline(*interruptible: str, flavor: str = "native", auto: str | None = None) -> Pipeline:
    jobs = tuple(
        Job(name=n, stage="test", steps=(), mark=MARK, interruptible=n in interruptible)
        for n in ("build", "test", "deploy")
    )
    return Pipeline(name="p", file="f", jobs=jobs, flavor=flavor, auto_cancel=auto)


def test_line_of_work_is_the_branch_of_a_push_or_the_request_number() -> None:
    assert line_of_work(_run("a")) == ("acme/app", "branch", "main")
    pr = _run("b", event=EventKind.PULL_REQUEST, ref="feature", number=7)
    assert line_of_work(pr) == ("acme/app", "pull_request", "7")
    assert line_of_work(_run("c", event=EventKind.TAG)) is None
    assert line_of_work(_run("d", event=EventKind.MANUAL)) is None
    assert line_of_work(_run("e", event=EventKind.SCHEDULE)) is None


def test_older_runs_of_the_same_branch_are_superseded() -> None:
    new = _run("new", at=10)
    candidates = [
        _run("old", at=1),
        _run("running", at=2, status=Status.RUNNING),
        _run("other-branch", at=3, ref="dev"),
        _run("other-repo", at=4, repo="acme/lib"),
        _run("tag", at=5, event=EventKind.TAG),
        _run("newer", at=11),
        new,
    ]
    assert [r.run_id for r in older_runs(candidates, new)] == ["old", "running"]


def test_a_push_does_not_supersede_a_pull_request_of_its_branch() -> None:
    new = _run("new", at=10, ref="feature")
    pr = _run("pr", at=1, event=EventKind.PULL_REQUEST, ref="feature", number=7)
    assert older_runs([pr], new) == []
    newer_pr = _run("pr2", at=10, event=EventKind.PULL_REQUEST, ref="feature", number=7)
    assert older_runs([pr], newer_pr) == [pr]


@pytest.mark.parametrize("mode", ["conservative", "interruptible"])
def test_a_run_without_started_jobs_is_canceled(mode: AutoCancel) -> None:
    assert should_cancel(mode, None, []) is True
    pending = [_job("build", Status.PENDING, started=False)]
    assert should_cancel(mode, _pipeline(), pending) is True


def test_mode_none_cancels_nothing() -> None:
    assert should_cancel("none", None, []) is False


def test_conservative_keeps_a_run_once_a_non_interruptible_job_started() -> None:
    jobs = [
        _job("build", Status.SUCCESS, started=True),
        _job("test", Status.RUNNING, started=True),
    ]
    assert should_cancel("conservative", _pipeline("build", "test"), jobs) is True
    assert should_cancel("conservative", _pipeline("test"), jobs) is False
    assert should_cancel("conservative", None, jobs) is False


def test_interruptible_looks_at_the_jobs_running_now() -> None:
    jobs = [
        _job("build", Status.SUCCESS, started=True),
        _job("test", Status.RUNNING, started=True),
    ]
    assert should_cancel("interruptible", _pipeline("test"), jobs) is True
    assert should_cancel("interruptible", _pipeline("build"), jobs) is False


def test_auto_cancel_mode_gitlab_file_decides_else_the_repo() -> None:
    assert auto_cancel_mode(_pipeline(flavor="gitlab", auto="none"), "interruptible") == "none"
    assert auto_cancel_mode(_pipeline(flavor="gitlab"), "interruptible") == "conservative"
    assert auto_cancel_mode(_pipeline(), "interruptible") == "interruptible"
    assert auto_cancel_mode(None, "none") == "none"


def test_gitlab_workflow_auto_cancel_on_new_commit_is_read() -> None:
    text = "workflow:\n  auto_cancel:\n    on_new_commit: interruptible\njob:\n  script: x\n"
    pipeline = parse(text)
    assert pipeline.auto_cancel == "interruptible"
    assert not any("auto_cancel" in w for w in pipeline.warnings)


def test_gitlab_workflow_auto_cancel_unknown_value_is_an_error() -> None:
    text = "workflow:\n  auto_cancel:\n    on_new_commit: always\njob:\n  script: x\n"
    [problem] = errors_of(text)
    assert ".gitlab-ci.yml:3:20:" in problem
    assert "must be conservative, interruptible or none" in problem


def test_native_job_interruptible_key() -> None:
    pipeline = parse_native(
        "jobs:\n  a: {run: x, interruptible: true}\n  b: {run: y}\n", ".conveyor.yml"
    )
    assert [job.interruptible for job in pipeline.jobs] == [True, False]
