"""Unit tests of conveyor.engine.resume: which jobs a play or a retry runs again, which
records stay."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from conveyor.engine.resume import (
    PLAY_REQUESTED,
    check_playable,
    check_retryable,
    is_interrupted,
    plan_reattach,
    plan_resume,
    play_request,
    requested_plays,
    requested_retries,
    retry_request,
)
from conveyor.errors import ConflictError
from conveyor.model import (
    Event,
    EventKind,
    Job,
    JobRecord,
    Mark,
    Need,
    Pipeline,
    Plan,
    PlannedJob,
    RunRecord,
    Status,
    Step,
    When,
)
from conveyor.status import DepResult, Outcome

MARK = Mark(".conveyor.yml", 1, 1)
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
WAIT_DEPLOY = "waiting for manual job deploy"


def _planned(
    name: str,
    needs: tuple[str, ...] | None = (),
    *,
    when: When = When.ON_SUCCESS,
    allow_failure: bool = False,
    after: tuple[str, ...] = (),
) -> PlannedJob:
    """A planned job; `needs` None means stage order, with `after` as its edges."""
    explicit = None if needs is None else tuple(Need(n) for n in needs)
    job = Job(name=name, stage="s", steps=(Step("x", "true"),), mark=MARK, needs=explicit)
    return PlannedJob(job, needs if needs is not None else after, (), when, allow_failure)


def _plan(*jobs: PlannedJob) -> Plan:
    pipeline = Pipeline("p", ".conveyor.yml", tuple(p.job for p in jobs))
    return Plan(pipeline, Event(), jobs)


def _record(name: str, status: Status, *, attempt: int = 0, reason: str | None = None) -> JobRecord:
    return JobRecord(name=name, stage="s", status=status, attempt=attempt, reason=reason)


def _ran(name: str, status: Status = Status.SUCCESS) -> JobRecord:
    return _record(name, status, attempt=1)


def _run(*jobs: JobRecord, status: Status = Status.SUCCESS) -> RunRecord:
    return RunRecord("r1", "acme/app", "main", "abc", EventKind.PUSH, status, T0, jobs=jobs)


DEPLOY_PLAN = _plan(
    _planned("build"),
    _planned("lint"),
    _planned("deploy", ("build",), when=When.MANUAL),
    _planned("smoke", ("deploy",)),
    _planned("notify", ("smoke",)),
    _planned("report", ("lint", "deploy")),
)
PLAYED_DEPLOY = _record("deploy", Status.PENDING, reason=PLAY_REQUESTED)
DEPLOY_RECORDS = (
    _ran("build"),
    _ran("lint", Status.FAILED),
    _record("deploy", Status.MANUAL, reason="manual job"),
    _record("smoke", Status.SKIPPED, reason=WAIT_DEPLOY),
    _record("notify", Status.SKIPPED, reason=WAIT_DEPLOY),
    _record("report", Status.SKIPPED, reason="needed job lint failed"),
)


def test_plan_resume_reruns_the_played_job_and_what_it_held_back() -> None:
    resume = plan_resume(DEPLOY_PLAN, DEPLOY_RECORDS, {"deploy"})
    assert resume.rerun == ("deploy", "smoke", "notify")


def test_plan_resume_keeps_jobs_skipped_for_another_reason() -> None:
    resume = plan_resume(DEPLOY_PLAN, DEPLOY_RECORDS, {"deploy"})
    assert {"build", "lint", "report"} == set(resume.kept)
    assert DEPLOY_RECORDS[5] == resume.kept["report"]


def test_plan_resume_hands_on_recorded_outcomes_of_kept_jobs() -> None:
    resume = plan_resume(DEPLOY_PLAN, DEPLOY_RECORDS, {"deploy"})
    assert {
        "build": DepResult("build", Outcome.SUCCEEDED),
        "lint": DepResult("lint", Outcome.FAILED),
        "report": DepResult("report", Outcome.FAILED),
    } == dict(resume.results)


def test_plan_resume_counts_no_attempt_for_never_run_jobs() -> None:
    resume = plan_resume(DEPLOY_PLAN, DEPLOY_RECORDS, {"deploy"})
    assert dict(resume.attempts) == {"deploy": 0, "smoke": 0, "notify": 0}


def test_plan_resume_accepts_a_play_recorded_as_pending() -> None:
    records = (*DEPLOY_RECORDS[:2], _record("deploy", Status.PENDING), *DEPLOY_RECORDS[3:])
    resume = plan_resume(DEPLOY_PLAN, records, {"deploy"})
    assert resume.rerun == ("deploy", "smoke", "notify")


def test_plan_resume_leaves_jobs_held_by_another_manual_job() -> None:
    plan = _plan(
        _planned("a", when=When.MANUAL),
        _planned("b", when=When.MANUAL),
        _planned("c", ("a", "b")),
    )
    records = (
        _record("a", Status.MANUAL),
        _record("b", Status.MANUAL),
        _record("c", Status.SKIPPED, reason="waiting for manual job a"),
    )
    assert (
        plan_resume(plan, records, {"b"}).rerun,
        plan_resume(plan, records, {"a"}).rerun,
    ) == (("b",), ("a", "c"))


def test_plan_resume_keeps_a_later_stage_that_ran_past_a_non_blocking_manual_job() -> None:
    plan = _plan(
        _planned("review", when=When.MANUAL, allow_failure=True),
        _planned("later", None, after=("review",)),
    )
    records = (_record("review", Status.MANUAL), _ran("later"))
    resume = plan_resume(plan, records, {"review"})
    assert (("review",), {"later": DepResult("later", Outcome.SUCCEEDED)}) == (
        resume.rerun,
        dict(resume.results),
    )


def test_plan_resume_of_a_live_run_leaves_unfinished_jobs_alone() -> None:
    plan = _plan(
        _planned("slow"),
        _planned("deploy", when=When.MANUAL),
        _planned("after", ("slow", "deploy")),
    )
    records = (
        _record("slow", Status.RUNNING, attempt=1),
        _record("deploy", Status.MANUAL),
        _record("after", Status.PENDING),
    )
    resume = plan_resume(plan, records, {"deploy"})
    assert (resume.rerun, dict(resume.results)) == (("deploy",), {})


def test_plan_resume_refuses_a_plan_with_a_job_the_run_never_recorded() -> None:
    with pytest.raises(ConflictError, match="no record in the run"):
        plan_resume(DEPLOY_PLAN, DEPLOY_RECORDS[:5], {"deploy"})


def test_plan_resume_refuses_to_play_a_job_that_is_not_manual() -> None:
    with pytest.raises(ConflictError, match="'smoke' is not a manual job"):
        plan_resume(DEPLOY_PLAN, DEPLOY_RECORDS, {"smoke"})


def test_requested_plays_are_pending_manual_jobs_without_attempt() -> None:
    records = (_ran("build"), PLAYED_DEPLOY, _record("smoke", Status.PENDING))
    assert frozenset({"deploy"}) == requested_plays(DEPLOY_PLAN, records)


def test_a_manual_job_stored_pending_while_its_need_runs_is_not_played() -> None:
    # A run stores its jobs `pending` before deciding them: interrupted while build ran,
    # its manual job was never played.
    records = (_record("build", Status.RUNNING, attempt=1), _record("deploy", Status.PENDING),
               _record("smoke", Status.PENDING))  # fmt: skip
    assert requested_plays(DEPLOY_PLAN, records) == frozenset()


def test_a_play_stored_without_the_play_reason_counts_once_its_needs_are_final() -> None:
    # As an earlier conveyor stored a play (no reason).
    records = (_ran("build"), _record("deploy", Status.PENDING), _record("smoke", Status.PENDING))
    assert requested_plays(DEPLOY_PLAN, records) == frozenset({"deploy"})


def test_play_request_is_the_pending_job_with_the_play_reason() -> None:
    assert play_request(DEPLOY_RECORDS[2]) == PLAYED_DEPLOY


def test_check_playable_returns_the_manual_record() -> None:
    assert DEPLOY_RECORDS[2] == check_playable(
        _run(*DEPLOY_RECORDS), "deploy", is_cancel_requested=False
    )


@pytest.mark.parametrize(
    ("run", "job", "cancel_requested", "message"),
    [
        (_run(*DEPLOY_RECORDS, status=Status.CANCELED), "deploy", False, "was canceled"),
        (_run(*DEPLOY_RECORDS), "deploy", True, "was canceled"),
        (_run(*DEPLOY_RECORDS), "deplyo", False, "no job 'deplyo'"),
        (_run(_ran("deploy")), "deploy", False, "it is success; it was already played"),
        (_run(_record("deploy", Status.PENDING)), "deploy", False, "it is pending"),
        (_run(*DEPLOY_RECORDS), "smoke", False, "it is skipped"),
    ],
)
def test_check_playable_refuses(
    run: RunRecord, job: str, cancel_requested: bool, message: str
) -> None:
    with pytest.raises(ConflictError, match=message):
        check_playable(run, job, is_cancel_requested=cancel_requested)


INTERRUPTED_PLAN = _plan(
    _planned("build"), _planned("test", ("build",)), _planned("ship", ("test",))
)


def test_plan_reattach_follows_running_attempts_and_runs_waiting_jobs() -> None:
    records = (_ran("build"), _record("test", Status.RUNNING, attempt=2),
               _record("ship", Status.PENDING))  # fmt: skip
    assert is_interrupted(INTERRUPTED_PLAN, records)
    resume = plan_reattach(INTERRUPTED_PLAN, records, played=())
    assert resume.rerun == ("test", "ship")
    assert resume.attempts == {"test": 1, "ship": 0}  # test runs as attempt 2 again
    assert resume.followed == {"test"}  # started before: followed, no header again
    assert set(resume.kept) == {"build"}
    assert resume.results["build"] == DepResult("build", Outcome.SUCCEEDED)


def test_plan_reattach_keeps_a_play_recorded_and_not_run_yet() -> None:
    # deploy was played live and waits with smoke (stored `pending` by the play) when the
    # server stops: re-attached, deploy is still played, or it would end `manual` again.
    records = (*DEPLOY_RECORDS[:2], PLAYED_DEPLOY, _record("smoke", Status.PENDING),
               *DEPLOY_RECORDS[4:])  # fmt: skip
    assert is_interrupted(DEPLOY_PLAN, records)
    resume = plan_reattach(DEPLOY_PLAN, records, played=())
    assert (resume.rerun, resume.play) == (("deploy", "smoke"), {"deploy"})


def test_a_retry_owed_before_a_manual_job_is_resumed_without_playing_it() -> None:
    # The server stopped while unit waited for its retry (stored as attempt 2, as a retry
    # request is) and the manual job after it waited, stored `pending` undecided.
    plan = _plan(_planned("unit"), _planned("deploy", ("unit",), when=When.MANUAL))
    records = (_record("unit", Status.PENDING, attempt=2), _record("deploy", Status.PENDING))
    assert is_interrupted(plan, records)
    resume = plan_reattach(plan, records, played=())
    assert (resume.rerun, resume.play, dict(resume.attempts)) == (
        ("unit", "deploy"),
        frozenset(),
        {"unit": 1, "deploy": 0},
    )


def test_a_recorded_play_is_not_an_interruption() -> None:
    records = (*DEPLOY_RECORDS[:2], PLAYED_DEPLOY, *DEPLOY_RECORDS[3:])
    assert not is_interrupted(DEPLOY_PLAN, records)
    assert not is_interrupted(DEPLOY_PLAN, DEPLOY_RECORDS)


# build -> unit (failed) -> package (skipped) -> publish (skipped); lint ran beside unit;
# on_fail ran because unit failed; cleanup was canceled while waiting (a fail_fast stop).
RETRY_PLAN = _plan(
    _planned("build"),
    _planned("lint", ("build",)),
    _planned("unit", ("build",)),
    _planned("package", ("unit",)),
    _planned("publish", ("package", "lint")),
    _planned("on_fail", ("unit",), when=When.ON_FAILURE),
    _planned("cleanup", ("unit",)),
)
RETRY_RECORDS = (
    _ran("build"),
    _ran("lint"),
    _ran("unit", Status.FAILED),
    _record("package", Status.SKIPPED, reason="needed job unit failed"),
    _record("publish", Status.SKIPPED, reason="needed job package was skipped"),
    _ran("on_fail"),
    _record("cleanup", Status.CANCELED, reason="fail_fast: job unit failed"),
)


def test_plan_resume_retries_the_job_then_the_never_run_jobs_after_it() -> None:
    resume = plan_resume(RETRY_PLAN, RETRY_RECORDS, (), retry={"unit"})
    assert resume.rerun == ("unit", "package", "publish", "cleanup")


def test_plan_resume_of_a_retry_keeps_the_jobs_that_ran() -> None:
    resume = plan_resume(RETRY_PLAN, RETRY_RECORDS, (), retry={"unit"})
    assert (set(resume.kept), resume.kept["on_fail"]) == (
        {"build", "lint", "on_fail"},
        RETRY_RECORDS[5],
    )
    assert resume.results["lint"] == DepResult("lint", Outcome.SUCCEEDED)


def test_plan_resume_counts_the_attempts_of_a_retried_job() -> None:
    resume = plan_resume(RETRY_PLAN, RETRY_RECORDS, (), retry={"unit"})
    assert dict(resume.attempts) == {"unit": 1, "package": 0, "publish": 0, "cleanup": 0}


def test_plan_resume_accepts_a_retry_recorded_as_the_pending_next_attempt() -> None:
    records = tuple(retry_request(r) if r.name == "unit" else r for r in RETRY_RECORDS)
    assert requested_retries(records) == frozenset({"unit"})
    resume = plan_resume(RETRY_PLAN, records, (), retry=requested_retries(records))
    assert (resume.rerun, resume.attempts["unit"]) == (
        ("unit", "package", "publish", "cleanup"),
        1,
    )


def test_plan_resume_refuses_to_retry_a_job_that_is_not_planned() -> None:
    with pytest.raises(ConflictError, match="'unti' is not in the plan"):
        plan_resume(RETRY_PLAN, RETRY_RECORDS, (), retry={"unti"})


def test_retry_request_is_the_pending_next_attempt_without_the_last_outcome() -> None:
    failed = JobRecord(
        name="unit", stage="s", status=Status.FAILED, attempt=2, exit_code=1,
        started_at=T0, finished_at=T0, reason="exit code 1", worker="local",
    )  # fmt: skip
    assert retry_request(failed) == JobRecord(
        name="unit", stage="s", status=Status.PENDING, attempt=3
    )


def test_requested_retries_are_pending_jobs_with_an_attempt_number() -> None:
    records = (_record("a", Status.PENDING), _record("b", Status.PENDING, attempt=2), _ran("c"))
    assert requested_retries(records) == frozenset({"b"})


def test_check_retryable_returns_the_failed_or_canceled_record() -> None:
    run = _run(*RETRY_RECORDS, status=Status.FAILED)
    assert (
        check_retryable(run, "unit", is_cancel_requested=False),
        check_retryable(run, "cleanup", is_cancel_requested=False),  # canceled while waiting
    ) == (RETRY_RECORDS[2], RETRY_RECORDS[6])


@pytest.mark.parametrize(
    ("run", "job", "cancel_requested", "message"),
    [
        (_run(*RETRY_RECORDS, status=Status.CANCELED), "unit", False, "was canceled"),
        (_run(*RETRY_RECORDS, status=Status.FAILED), "unit", True, "was canceled"),
        (_run(*RETRY_RECORDS), "unti", False, "no job 'unti'"),
        (_run(*RETRY_RECORDS), "build", False, "'build' is success; only a failed or canceled"),
        (_run(*RETRY_RECORDS), "package", False, "is skipped"),
        (_run(_record("unit", Status.RUNNING, attempt=1)), "unit", False, "is running"),
    ],
)
def test_check_retryable_refuses(
    run: RunRecord, job: str, cancel_requested: bool, message: str
) -> None:
    with pytest.raises(ConflictError, match=message):
        check_retryable(run, job, is_cancel_requested=cancel_requested)


def test_a_recorded_retry_is_not_an_interruption() -> None:
    records = tuple(retry_request(r) if r.name == "unit" else r for r in RETRY_RECORDS)
    assert not is_interrupted(RETRY_PLAN, records)
