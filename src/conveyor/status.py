"""Outcome rules of jobs and runs: whether a job starts, why it is skipped, whether a failed
attempt is retried, whether a failure is allowed, and the status of a whole run.

Pure: statuses and policies come in as arguments; no clock, environment, process or store.
The scheduler asks these questions; it never answers them itself.

A finished job hands its dependants an `Outcome`:
  succeeded   success, an allowed failure, or a job skipped for a harmless reason
              (an `on_failure` job whose dependencies all passed)
  failed      a failure that is not allowed, or a job skipped because of one — transitively,
              as GitLab and GitHub do
  canceled    canceled, or skipped because of a cancellation
  blocked     a `manual` job that was not played, or a job waiting behind one

A blocked result is `blocking` unless it is an unplayed manual job whose failure is allowed
(GitLab's job-level `when: manual`): such a job holds back only the jobs that name it in
`needs`; jobs that follow it only through stage order start as if it had succeeded. A
blocking manual job (`allow_failure` false, e.g. GitLab `rules: when: manual`) and every job
waiting behind one hold back all their dependants, which end `skipped` ("waiting for manual
job X") without failing the run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from conveyor.model import JobRecord, Retry, Status, When

__all__ = [
    "RUNNER_INTERRUPTED",
    "STUCK_OR_TIMEOUT",
    "Decision",
    "DepResult",
    "Outcome",
    "decide_start",
    "is_allowed_failure",
    "outcome_of",
    "run_status",
    "should_retry",
]

# GitLab's `retry:when` words, mapped onto the two kinds of failure conveyor tells apart.
_FAILURE_WORDS = frozenset({"failure", "script_failure", "unknown_failure"})
_TIMEOUT_WORDS = frozenset({"timeout", "job_execution_timeout", "stuck_or_timeout_failure"})
# An attempt whose worker was lost (kill -9, a host gone: fleet) ends with this reason, and
# only GitLab's runner words (or `always`, or no `when` at all) retry it; the script never
# failed, so the failure words do not.
RUNNER_INTERRUPTED = "runner_interrupted"
_RUNNER_WORDS = frozenset({"runner_system_failure", RUNNER_INTERRUPTED})
# A job that waited past `[executor] pending_timeout` for a worker ends with this reason.
STUCK_OR_TIMEOUT = "stuck_or_timeout_failure"


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    BLOCKED = "blocked"


@dataclass(frozen=True, slots=True)
class DepResult:
    """What a finished job means to the jobs that depend on it. `blocked_by` names the
    manual job holding it back when `outcome` is BLOCKED; `blocking` false means it holds
    back only jobs that explicitly need it (see the module docstring)."""

    name: str
    outcome: Outcome
    blocked_by: str | None = None
    blocking: bool = True


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether a job starts. When it does not, `status` (skipped or manual) and `reason` go
    into its record and `outcome` is what it hands on to its own dependants."""

    should_run: bool
    status: Status = Status.PENDING
    reason: str | None = None
    outcome: Outcome = Outcome.SUCCEEDED
    blocked_by: str | None = None
    blocking: bool = True

    def result(self, name: str) -> DepResult:
        """The DepResult of a job that was not started because of this decision."""
        return DepResult(name, self.outcome, self.blocked_by, self.blocking)


_RUN = Decision(should_run=True)


def outcome_of(name: str, status: Status, *, allowed_failure: bool = False) -> DepResult:
    """The outcome of a job that ran (or was canceled, or ended `manual`; an unplayed manual
    job whose failure is allowed is not blocking)."""
    if status is Status.SUCCESS or (status is Status.FAILED and allowed_failure):
        return DepResult(name, Outcome.SUCCEEDED)
    if status is Status.FAILED:
        return DepResult(name, Outcome.FAILED)
    if status is Status.MANUAL:
        return DepResult(name, Outcome.BLOCKED, blocked_by=name, blocking=not allowed_failure)
    if status is Status.CANCELED:
        return DepResult(name, Outcome.CANCELED)
    raise ValueError(f"outcome_of: {name!r} is {status}, not a final status of a started job")


def _first(deps: Sequence[DepResult], outcome: Outcome) -> DepResult | None:
    for dep in deps:
        if dep.outcome is outcome:
            return dep
    return None


def decide_start(
    name: str,
    when: When,
    deps: Sequence[DepResult],
    *,
    is_played: bool = False,
    allow_failure: bool = False,
    explicit_needs: bool = False,
    skip_reason: str | None = None,
) -> Decision:
    """Whether job `name` (with `when`, after rules) starts, given the results of every job
    it depends on. `is_played`: a manual job was asked for (`--job`, API play).
    `allow_failure`: the job's own failure is allowed (an unplayed manual job is then not
    blocking). `explicit_needs`: its edges are `needs`, not stage order (a non-blocking
    manual dependency then still holds it back). `skip_reason`: the run withholds the job
    (e.g. it declares secrets in a fork's pull request); its dependants do not run either."""
    if skip_reason is not None:
        return Decision(False, Status.SKIPPED, skip_reason, Outcome.CANCELED)
    if when is When.ALWAYS:
        return _RUN
    if when is When.NEVER:
        return Decision(False, Status.SKIPPED, "when: never")
    failed = _first(deps, Outcome.FAILED)
    canceled = _first(deps, Outcome.CANCELED)
    blocked = _first_holding(deps, explicit_needs=explicit_needs)
    if when is When.ON_FAILURE:
        if failed is not None:
            return _RUN
        if canceled is not None:
            return Decision(
                False, Status.SKIPPED, f"needed job {canceled.name} was canceled", Outcome.CANCELED
            )
        if blocked is not None:
            return _waiting(blocked)
        return Decision(False, Status.SKIPPED, "no needed job failed (when: on_failure)")
    # on_success, manual and delayed all need every dependency to have passed.
    if failed is not None:
        return Decision(False, Status.SKIPPED, f"needed job {failed.name} failed", Outcome.FAILED)
    if canceled is not None:
        return Decision(
            False, Status.SKIPPED, f"needed job {canceled.name} was canceled", Outcome.CANCELED
        )
    if blocked is not None:
        return _waiting(blocked)
    if when is When.MANUAL and not is_played:
        return Decision(
            False,
            Status.MANUAL,
            f"manual job: waiting to be played (`conveyor play <run> '{name}'`, or the API)",
            Outcome.BLOCKED,
            blocked_by=name,
            blocking=not allow_failure,
        )
    return _RUN


def _first_holding(deps: Sequence[DepResult], *, explicit_needs: bool) -> DepResult | None:
    """The first blocked dependency that holds the job back (a non-blocking one only
    through an explicit need)."""
    for dep in deps:
        if dep.outcome is Outcome.BLOCKED and (dep.blocking or explicit_needs):
            return dep
    return None


def _waiting(blocked: DepResult) -> Decision:
    holder = blocked.blocked_by or blocked.name
    return Decision(
        False, Status.SKIPPED, f"waiting for manual job {holder}", Outcome.BLOCKED, holder
    )


def should_retry(
    retry: Retry,
    attempt: int,
    *,
    exit_code: int | None,
    timed_out: bool,
    reason: str | None = None,
) -> bool:
    """Whether failed execution number `attempt` (1 for the first) is followed by another.
    `retry.max` counts retries, so at most `retry.max + 1` executions happen. `reason`
    RUNNER_INTERRUPTED (the worker was lost) matches `runner_system_failure` and
    `runner_interrupted` only."""
    if attempt > retry.max:
        return False
    if not retry.when and not retry.exit_codes:
        return True
    if "always" in retry.when:
        return True
    if reason == RUNNER_INTERRUPTED:
        return bool(retry.when & _RUNNER_WORDS)
    if timed_out and retry.when & _TIMEOUT_WORDS:
        return True
    if not timed_out and retry.when & _FAILURE_WORDS:
        return True
    return exit_code is not None and exit_code in retry.exit_codes


def is_allowed_failure(
    allow_failure: bool, exit_codes: frozenset[int], exit_code: int | None
) -> bool:
    """Whether a failure is only a warning. With `exit_codes`, only those codes are allowed
    (GitLab's `allow_failure: exit_codes`), and a timeout (no exit code) never is."""
    if exit_codes:
        return exit_code is not None and exit_code in exit_codes
    return allow_failure


def run_status(jobs: Iterable[JobRecord], *, is_canceled: bool = False) -> Status:
    """The final status of a run: canceled when cancellation was asked for; failed when a
    job failed and its failure was not allowed (`JobRecord.allow_failure` of a failed job
    says whether its failure was allowed); canceled when a job was; success otherwise
    (skipped and manual jobs do not fail a run)."""
    if is_canceled:
        return Status.CANCELED
    statuses = [(job.status, job.allow_failure) for job in jobs]
    if any(status is Status.FAILED and not allowed for status, allowed in statuses):
        return Status.FAILED
    if any(status is Status.CANCELED for status, _ in statuses):
        return Status.CANCELED
    return Status.SUCCESS
