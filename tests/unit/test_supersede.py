"""Which older runs a new run supersedes, and what of them is canceled (conveyor.supersede),
checked against GitLab's documented examples."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from conveyor.config.native import parse_native
from conveyor.model import Event, EventKind, Job, JobRecord, Mark, Pipeline, Plan, RunRecord, Status
from conveyor.plan import plan
from conveyor.supersede import (
    NOTHING,
    Cancellation,
    auto_cancel_mode,
    cancellation,
    cancellation_unplanned,
    line_of_work,
    older_runs,
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


# GitLab's documentation of `interruptible` (doc/ci/yaml/_index.md), both examples.
STEPS = """
workflow:
  auto_cancel:
    on_new_commit: {mode}
stages: [stage1, stage2, stage3]
step-1:
  stage: stage1
  script: [echo "Can be canceled."]
  interruptible: true
step-2:
  stage: stage2
  script: [echo "Can not be canceled."]
step-3:
  stage: stage3
  script: [echo "Can be canceled."]
  interruptible: true
"""


def _steps(mode: str) -> Plan:
    return plan(parse(STEPS.format(mode=mode)), Event(kind=EventKind.PUSH, ref="main"))


def _records(**statuses: Status) -> list[JobRecord]:
    started = (Status.RUNNING, Status.SUCCESS, Status.FAILED, Status.CANCELED)
    return [
        _job(name.replace("_", "-"), status, started=status in started)
        for name, status in statuses.items()
    ]


def test_conservative_cancels_the_run_while_only_interruptible_jobs_started() -> None:
    # "Canceled, if only step-1 is running or pending."
    running = _records(step_1=Status.RUNNING, step_2=Status.PENDING, step_3=Status.PENDING)
    assert cancellation("conservative", _steps("conservative"), running).is_whole_run
    assert cancellation("conservative", _steps("conservative"), []).is_whole_run


def test_conservative_keeps_a_run_once_a_non_interruptible_job_started() -> None:
    # "Not canceled, after step-2 starts."; also once it has ended.
    for step_2 in (Status.RUNNING, Status.SUCCESS):
        jobs = _records(step_1=Status.SUCCESS, step_2=step_2, step_3=Status.PENDING)
        assert cancellation("conservative", _steps("conservative"), jobs) is NOTHING


def test_interruptible_cancels_only_the_interruptible_jobs_running_or_waiting() -> None:
    # "a new pipeline causes a running pipeline to cancel step-1 and step-3 if they are
    # running or pending"; step-2 is never canceled, running or not.
    steps = _steps("interruptible")
    waiting = _records(step_1=Status.RUNNING, step_2=Status.PENDING, step_3=Status.PENDING)
    assert cancellation("interruptible", steps, waiting) == Cancellation(jobs=("step-1", "step-3"))
    assert cancellation("interruptible", steps, []) == Cancellation(jobs=("step-1", "step-3"))
    later = _records(step_1=Status.SUCCESS, step_2=Status.RUNNING, step_3=Status.PENDING)
    assert cancellation("interruptible", steps, later) == Cancellation(jobs=("step-3",))
    ended = _records(step_1=Status.SUCCESS, step_2=Status.RUNNING, step_3=Status.SKIPPED)
    assert cancellation("interruptible", steps, ended).is_nothing


def test_interruptible_leaves_manual_jobs_waiting_to_be_played() -> None:
    text = "workflow: {auto_cancel: {on_new_commit: interruptible}}\n" + "\n".join(
        f"{name}:\n  script: [x]\n  interruptible: true\n  when: manual" for name in "ab"
    )
    manual = plan(parse(text), Event(kind=EventKind.PUSH, ref="main"))
    jobs = [_job("a", Status.MANUAL, started=False), _job("b", Status.RUNNING, started=True)]
    assert cancellation("interruptible", manual, jobs) == Cancellation(jobs=("b",))
    assert cancellation("interruptible", manual, []).is_nothing


def test_mode_none_cancels_nothing() -> None:
    running = _records(step_1=Status.RUNNING)
    assert cancellation("none", _steps("none"), running) is NOTHING
    assert cancellation("none", _steps("none"), []) is NOTHING


def test_native_pipeline_jobs_carry_interruptible() -> None:
    native = parse_native(
        "jobs:\n  build: {run: x, interruptible: true}\n  deploy: {run: y}\n", ".conveyor.yml"
    )
    planned = plan(native, Event(kind=EventKind.PUSH, ref="main"))
    jobs = [
        _job("build", Status.RUNNING, started=True),
        _job("deploy", Status.RUNNING, started=True),
    ]
    assert cancellation("interruptible", planned, jobs) == Cancellation(jobs=("build",))
    assert cancellation("conservative", planned, jobs) is NOTHING


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


def test_a_run_not_planned_yet_is_decided_by_its_mode_when_it_can_be() -> None:
    assert cancellation_unplanned("conservative", []) == Cancellation(is_whole_run=True)
    assert cancellation_unplanned("none", []) is NOTHING
    assert cancellation_unplanned("interruptible", []) is None  # its file says which jobs
    # A resumed run (a played manual job) waiting again: its started jobs need its plan.
    resumed = [
        _job("build", Status.SUCCESS, started=True),
        _job("deploy", Status.PENDING, started=False),
    ]
    assert cancellation_unplanned("conservative", resumed) is None
    assert cancellation_unplanned("none", resumed) is NOTHING
