"""Unit tests of conveyor.status: start decisions, retries, allowed failures, run status."""

from __future__ import annotations

import pytest

from conveyor.model import JobRecord, Retry, Status, When
from conveyor.status import (
    RUNNER_INTERRUPTED,
    Decision,
    DepResult,
    Outcome,
    decide_start,
    is_allowed_failure,
    outcome_of,
    run_status,
    should_retry,
)

OK = DepResult("build", Outcome.SUCCEEDED)
FAILED = DepResult("lint", Outcome.FAILED)
CANCELED = DepResult("slow", Outcome.CANCELED)
BLOCKED = DepResult("approve", Outcome.BLOCKED, blocked_by="approve")


def test_outcome_of_success_is_succeeded() -> None:
    assert DepResult("a", Outcome.SUCCEEDED) == outcome_of("a", Status.SUCCESS)


def test_outcome_of_allowed_failure_is_succeeded() -> None:
    assert outcome_of("a", Status.FAILED, allowed_failure=True).outcome == Outcome.SUCCEEDED


def test_outcome_of_failure_is_failed() -> None:
    assert outcome_of("a", Status.FAILED).outcome == Outcome.FAILED


def test_outcome_of_manual_blocks_by_itself() -> None:
    assert DepResult("a", Outcome.BLOCKED, "a") == outcome_of("a", Status.MANUAL)


def test_outcome_of_canceled_is_canceled() -> None:
    assert outcome_of("a", Status.CANCELED).outcome == Outcome.CANCELED


def test_outcome_of_rejects_non_final_status() -> None:
    with pytest.raises(ValueError, match="not a final status"):
        outcome_of("a", Status.RUNNING)


def test_decide_start_always_runs_after_failure() -> None:
    assert decide_start("x", When.ALWAYS, [FAILED, CANCELED]).should_run


def test_decide_start_never_is_skipped() -> None:
    decision = decide_start("x", When.NEVER, [])
    assert (decision.should_run, decision.status) == (False, Status.SKIPPED)


def test_decide_start_on_success_runs_when_all_passed() -> None:
    assert decide_start("x", When.ON_SUCCESS, [OK, OK]).should_run


def test_decide_start_on_success_runs_without_deps() -> None:
    assert decide_start("x", When.ON_SUCCESS, []).should_run


def test_decide_start_on_success_skips_after_failure_and_passes_it_on() -> None:
    expected = Decision(False, Status.SKIPPED, "needed job lint failed", Outcome.FAILED)
    assert expected == decide_start("x", When.ON_SUCCESS, [OK, FAILED, BLOCKED])


def test_decide_start_on_success_skips_after_cancel() -> None:
    decision = decide_start("x", When.ON_SUCCESS, [CANCELED, BLOCKED])
    assert (
        decision.reason,
        decision.outcome,
    ) == ("needed job slow was canceled", Outcome.CANCELED)


def test_decide_start_on_success_waits_for_manual_job() -> None:
    decision = decide_start("x", When.ON_SUCCESS, [OK, BLOCKED])
    assert (
        decision.status,
        decision.reason,
        decision.blocked_by,
    ) == (Status.SKIPPED, "waiting for manual job approve", "approve")


def test_decide_start_waiting_is_transitive() -> None:
    first = decide_start("x", When.ON_SUCCESS, [BLOCKED])
    second = decide_start("y", When.ON_SUCCESS, [first.result("x")])
    assert second.reason == "waiting for manual job approve"


def test_decide_start_waiting_names_dep_without_holder() -> None:
    decision = decide_start("x", When.ON_SUCCESS, [DepResult("gate", Outcome.BLOCKED)])
    assert decision.reason == "waiting for manual job gate"


def test_decide_start_failure_is_transitive() -> None:
    first = decide_start("x", When.ON_SUCCESS, [FAILED])
    assert decide_start("y", When.ON_FAILURE, [first.result("x")]).should_run


def test_decide_start_on_failure_runs_after_failure() -> None:
    assert decide_start("x", When.ON_FAILURE, [OK, FAILED]).should_run


def test_decide_start_on_failure_skips_when_all_passed() -> None:
    decision = decide_start("x", When.ON_FAILURE, [OK])
    assert (decision.should_run, decision.outcome) == (False, Outcome.SUCCEEDED)
    assert decision.reason == "no needed job failed (when: on_failure)"


def test_decide_start_on_failure_skips_after_cancel() -> None:
    assert decide_start("x", When.ON_FAILURE, [CANCELED]).outcome == Outcome.CANCELED


def test_decide_start_on_failure_waits_for_manual() -> None:
    assert decide_start("x", When.ON_FAILURE, [BLOCKED]).outcome == Outcome.BLOCKED


def test_decide_start_manual_not_played_ends_manual() -> None:
    decision = decide_start("deploy", When.MANUAL, [OK])
    assert (
        decision.should_run,
        decision.status,
        decision.blocked_by,
    ) == (False, Status.MANUAL, "deploy")


def test_decide_start_manual_played_runs() -> None:
    assert decide_start("deploy", When.MANUAL, [OK], is_played=True).should_run


def test_decide_start_manual_after_failure_is_skipped() -> None:
    assert decide_start("deploy", When.MANUAL, [FAILED], is_played=True).status == Status.SKIPPED


NON_BLOCKING = DepResult("approve", Outcome.BLOCKED, blocked_by="approve", blocking=False)


def test_outcome_of_manual_with_allowed_failure_is_not_blocking() -> None:
    assert outcome_of("approve", Status.MANUAL, allowed_failure=True) == NON_BLOCKING


def test_decide_start_manual_with_allowed_failure_is_not_blocking() -> None:
    decision = decide_start("approve", When.MANUAL, [OK], allow_failure=True)
    assert (decision.status, decision.result("approve")) == (Status.MANUAL, NON_BLOCKING)


def test_decide_start_blocking_manual_is_blocking() -> None:
    assert decide_start("approve", When.MANUAL, [OK]).result("approve").blocking


def test_decide_start_stage_order_passes_non_blocking_manual() -> None:
    assert decide_start("deploy", When.ON_SUCCESS, [OK, NON_BLOCKING]).should_run


def test_decide_start_on_failure_ignores_non_blocking_manual_by_stage() -> None:
    decision = decide_start("cleanup", When.ON_FAILURE, [NON_BLOCKING])
    assert (decision.should_run, decision.outcome) == (False, Outcome.SUCCEEDED)


def test_decide_start_explicit_need_waits_for_non_blocking_manual() -> None:
    decision = decide_start("deploy", When.ON_SUCCESS, [OK, NON_BLOCKING], explicit_needs=True)
    assert (decision.status, decision.reason, decision.outcome) == (
        Status.SKIPPED,
        "waiting for manual job approve",
        Outcome.BLOCKED,
    )


def test_decide_start_job_waiting_behind_manual_is_blocking() -> None:
    waiting = decide_start("deploy", When.ON_SUCCESS, [NON_BLOCKING], explicit_needs=True)
    later = decide_start("notify", When.ON_SUCCESS, [waiting.result("deploy")])
    assert (later.status, later.reason) == (Status.SKIPPED, "waiting for manual job approve")


def test_decide_start_stage_order_waits_for_blocking_manual() -> None:
    decision = decide_start("deploy", When.ON_SUCCESS, [OK, BLOCKED], explicit_needs=False)
    assert decision.reason == "waiting for manual job approve"


def test_decide_start_delayed_runs_like_on_success() -> None:
    assert decide_start("x", When.DELAYED, [OK]).should_run


def test_should_retry_stops_after_max_retries() -> None:
    retry = Retry(max=2)
    assert [
        should_retry(retry, attempt, exit_code=1, timed_out=False) for attempt in (1, 2, 3)
    ] == [True, True, False]


def test_should_retry_never_without_policy() -> None:
    assert not should_retry(Retry(), 1, exit_code=1, timed_out=False)


def test_should_retry_always_word() -> None:
    assert should_retry(Retry(max=1, when=frozenset({"always"})), 1, exit_code=1, timed_out=True)


def test_should_retry_timeout_only_on_timeout() -> None:
    retry = Retry(max=1, when=frozenset({"timeout"}))
    assert (
        should_retry(retry, 1, exit_code=None, timed_out=True),
        should_retry(retry, 1, exit_code=1, timed_out=False),
    ) == (True, False)


def test_should_retry_failure_only_on_plain_failure() -> None:
    retry = Retry(max=1, when=frozenset({"script_failure"}))
    assert (
        should_retry(retry, 1, exit_code=1, timed_out=False),
        should_retry(retry, 1, exit_code=None, timed_out=True),
    ) == (True, False)


def test_should_retry_exit_codes() -> None:
    retry = Retry(max=1, exit_codes=frozenset({137}))
    assert (
        should_retry(retry, 1, exit_code=137, timed_out=False),
        should_retry(retry, 1, exit_code=1, timed_out=False),
        should_retry(retry, 1, exit_code=None, timed_out=True),
    ) == (True, False, False)


def test_is_allowed_failure_flag() -> None:
    assert (
        is_allowed_failure(True, frozenset(), 1),
        is_allowed_failure(False, frozenset(), 1),
    ) == (True, False)


def test_is_allowed_failure_exit_codes() -> None:
    codes = frozenset({3})
    assert (
        is_allowed_failure(True, codes, 3),
        is_allowed_failure(True, codes, 1),
        is_allowed_failure(True, codes, None),
    ) == (True, False, False)


def _job(status: Status, allowed: bool = False) -> JobRecord:
    return JobRecord(name="j", stage="test", status=status, allow_failure=allowed)


def test_run_status_success_with_skipped_and_manual() -> None:
    jobs = [_job(Status.SUCCESS), _job(Status.SKIPPED), _job(Status.MANUAL)]
    assert run_status(jobs) == Status.SUCCESS


def test_run_status_failed() -> None:
    assert run_status([_job(Status.SUCCESS), _job(Status.FAILED)]) == Status.FAILED


def test_run_status_allowed_failure_passes() -> None:
    assert run_status([_job(Status.FAILED, allowed=True)]) == Status.SUCCESS


def test_run_status_failure_wins_over_cancel() -> None:
    assert run_status([_job(Status.CANCELED), _job(Status.FAILED)]) == Status.FAILED


def test_run_status_canceled_job() -> None:
    assert run_status([_job(Status.SUCCESS), _job(Status.CANCELED)]) == Status.CANCELED


def test_run_status_cancel_requested() -> None:
    assert run_status([_job(Status.FAILED)], is_canceled=True) == Status.CANCELED


@pytest.mark.parametrize(
    ("when", "retried"),
    [
        (frozenset({"runner_interrupted"}), True),
        (frozenset({"runner_system_failure"}), True),
        (frozenset({"always"}), True),
        (frozenset(), True),
        (frozenset({"script_failure", "failure"}), False),
        (frozenset({"timeout"}), False),
    ],
)
def test_a_lost_worker_is_retried_by_the_runner_words_only(
    when: frozenset[str], retried: bool
) -> None:
    retry = Retry(max=1, when=when)
    lost = should_retry(retry, 1, exit_code=None, timed_out=False, reason=RUNNER_INTERRUPTED)
    assert lost is retried


def test_the_runner_words_do_not_retry_a_script_failure() -> None:
    retry = Retry(max=1, when=frozenset({"runner_system_failure", "runner_interrupted"}))
    assert not should_retry(retry, 1, exit_code=1, timed_out=False, reason="exit code 1")
