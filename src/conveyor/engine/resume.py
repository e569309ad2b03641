"""Running jobs again inside a run that already has job records, as GitLab does: playing a
manual job, and retrying a failed or canceled job. Which jobs run now, which records stay
as they are, and when a play or a retry is refused.

    check_playable(run, "deploy", is_cancel_requested=False)   # ConflictError when refused
    resume = plan_resume(plan, run.jobs, play={"deploy"})
    resume.rerun    # ("deploy", "smoke"): the played job, then the jobs it held back
    resume.kept     # every other job's record, unchanged (success, failed, skipped, …)
    resume.results  # what each kept job hands on to its dependants (status.DepResult)

    check_retryable(run, "unit", is_cancel_requested=False)    # ConflictError when refused
    resume = plan_resume(plan, run.jobs, (), retry={"unit"})
    resume.rerun    # ("unit", "deploy"): a new attempt of unit, then what its end skipped

The run's past decisions are replayed with `status.decide_start` over the stored records, in
plan order: a job that ran hands on its recorded outcome, a job that never ran the decision
it got. A job is held back by a played job when it was skipped because of it — the replayed
decision is "blocked by" that manual job (transitively: the holder's name travels down the
DAG). Jobs skipped for any other reason (a failed or canceled need, `when: never`, another
unplayed manual job) keep their records. The played job itself may be stored `manual`, or
`pending` with no attempt and the reason "play requested" (`play_request`: a play recorded
by the server before the run was picked up again).

A retried job runs as its next attempt (the earlier ones stay in the store's history), and
every job after it in the DAG that never ran — skipped or canceled while it waited, because
of it or not — is decided again once the retried job has its new outcome (GitLab marks the
later jobs "processable" again the same way); jobs that ran keep their records. A retry the
server recorded before a worker picked the run up again is the job stored `pending` with
the number of its next attempt (`retry_request`).

An automatic retry (`retry:`) owed when the server stopped — the job in its delay, or its
next attempt waiting for a worker — is stored the same way by the scheduler (`pending`
with the attempt it waits to run), so a resume runs that attempt at once, its delay not
waited again.

`plan_reattach` resumes a run its server left while jobs ran on fleet workers (a restart):
every job not final runs again (a play recorded and not run yet still played), a job
stored `running` with the SAME attempt number (the
fleet's executor then follows that attempt, still running or finished on its worker,
instead of starting a new one: `Resume.followed`, whose log already holds the attempt's
header and goes on with the worker's next line), the final jobs keep their records.
Pure: no clock, store, file or process; the scheduler executes the result.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace

from conveyor.errors import ConflictError, RunCanceled
from conveyor.model import JobRecord, Plan, PlannedJob, RunRecord, Status, When
from conveyor.status import DepResult, Outcome, decide_start, outcome_of

__all__ = [
    "PLAY_REQUESTED",
    "RETRYABLE",
    "Resume",
    "check_not_canceled",
    "check_playable",
    "check_retryable",
    "is_interrupted",
    "plan_reattach",
    "plan_resume",
    "play_request",
    "requested_plays",
    "requested_retries",
    "retry_request",
]

#: The reason a played manual job carries while it waits to run (`play_request`): a run
#: stores its jobs `pending` before deciding them, so without it a manual job not decided
#: yet when its server stopped would look played.
PLAY_REQUESTED = "play requested"

#: The statuses a job can be retried from (GitLab also retries a successful job; conveyor
#: does not: docs/api.md).
RETRYABLE = frozenset({Status.FAILED, Status.CANCELED})


@dataclass(frozen=True, slots=True)
class Resume:
    """What resuming a run executes (`rerun`, in plan order) and what it keeps. `attempts`
    counts the executions already recorded for each rerun job (its next one is +1).
    `followed`: the rerun jobs whose next attempt had started before the run was
    interrupted (`plan_reattach`): it is followed, not started, so the scheduler writes no
    attempt header for it again (that line is in the job's log already)."""

    play: frozenset[str]
    rerun: tuple[str, ...]
    kept: Mapping[str, JobRecord]
    results: Mapping[str, DepResult]
    attempts: Mapping[str, int]
    followed: frozenset[str] = frozenset()


def check_playable(run: RunRecord, job: str, *, is_cancel_requested: bool) -> JobRecord:
    """The record of manual job `job` of `run`, waiting to be played; ConflictError (the API
    answers 409) when the job is not waiting to be played, RunCanceled when the run was
    canceled."""
    record = _open_record(run, job, is_cancel_requested, is_retry=False)
    if record.status is not Status.MANUAL or record.attempt:
        raise ConflictError(
            f"run {run.run_id}: job {job!r} is not a manual job waiting to be played (it is "
            f"{record.status}; it was already played, or it is not manual)"
        )
    return record


def check_retryable(run: RunRecord, job: str, *, is_cancel_requested: bool) -> JobRecord:
    """The record of job `job` of `run`, failed or canceled and so retryable; ConflictError
    (the API answers 409) when the job did not fail, RunCanceled when the run was
    canceled."""
    record = _open_record(run, job, is_cancel_requested, is_retry=True)
    if record.status not in RETRYABLE:
        raise ConflictError(
            f"run {run.run_id}: job {job!r} is {record.status}; only a failed or canceled job "
            "can be retried"
        )
    return record


def check_not_canceled(run: RunRecord, *, is_retry: bool, is_cancel_requested: bool) -> None:
    """RunCanceled (the API answers 409 run_canceled) when `run` was canceled or its cancel
    is requested: its jobs can no longer be retried (`is_retry`) or played. The one wording
    of that refusal, for the engine, the queue and the routes."""
    if run.status is Status.CANCELED or is_cancel_requested:
        instead = (
            "its jobs can no longer be retried (retry the whole run instead)"
            if is_retry
            else "its manual jobs can no longer be played (trigger a new run)"
        )
        raise RunCanceled(f"run {run.run_id}: the run was canceled, {instead}")


def _open_record(
    run: RunRecord, job: str, is_cancel_requested: bool, *, is_retry: bool
) -> JobRecord:
    """The record of `job` in a run not canceled (`check_not_canceled`); ConflictError
    naming the job when the run has none of that name."""
    check_not_canceled(run, is_retry=is_retry, is_cancel_requested=is_cancel_requested)
    record = next((j for j in run.jobs if j.name == job), None)
    if record is None:
        raise ConflictError(
            f"run {run.run_id}: no job {job!r} in this run (see the run's jobs and their statuses)"
        )
    return record


def _records_by_name(plan: Plan, records: Iterable[JobRecord]) -> dict[str, JobRecord]:
    """The run's job records by name; ConflictError when a planned job has none."""
    by_name = {r.name: r for r in records}
    for planned in plan.jobs:
        if planned.name not in by_name:
            raise ConflictError(
                f"run resume: job {planned.name!r} of the plan has no record in the run "
                "(the pipeline of this commit no longer plans the same jobs; trigger a new run)"
            )
    return by_name


def retry_request(record: JobRecord) -> JobRecord:
    """How a retry is stored until the run executes it: the job `pending` as its next
    attempt, nothing of the attempt before (which stays in the store's history)."""
    return replace(
        record,
        status=Status.PENDING,
        attempt=record.attempt + 1,
        exit_code=None,
        started_at=None,
        finished_at=None,
        reason=None,
        steps=(),
        worker=None,
    )


def play_request(record: JobRecord) -> JobRecord:
    """How a play is stored until the run executes it: the manual job `pending`, no
    attempt, with the reason PLAY_REQUESTED."""
    return replace(record, status=Status.PENDING, reason=PLAY_REQUESTED)


def requested_retries(records: Iterable[JobRecord]) -> frozenset[str]:
    """Jobs whose retry was recorded but not executed yet (`retry_request`): stored
    `pending` with an attempt number."""
    return frozenset(r.name for r in records if r.status is Status.PENDING and r.attempt)


def requested_plays(plan: Plan, records: Iterable[JobRecord]) -> frozenset[str]:
    """Manual jobs whose play was recorded but not executed yet (`play_request`): stored
    `pending` with no attempt and the reason PLAY_REQUESTED. A play an earlier conveyor
    stored has no reason: it counts when the job's needs are all final (a manual job a run
    stored `pending` and had not decided yet waits for a need)."""
    listed = list(records)
    final = {r.name for r in listed if r.status.is_final}
    manual = {p.name: p for p in plan.jobs if p.when is When.MANUAL}
    return frozenset(
        r.name
        for r in listed
        if r.status is Status.PENDING
        and not r.attempt
        and r.name in manual
        and (
            r.reason == PLAY_REQUESTED
            or (r.reason is None and final.issuperset(manual[r.name].depends_on))
        )
    )


def plan_resume(
    plan: Plan,
    records: Iterable[JobRecord],
    play: Collection[str],
    *,
    played: Collection[str] = (),
    retry: Collection[str] = (),
) -> Resume:
    """Resume the run whose jobs are `records` by playing the manual jobs `play` and
    retrying the jobs `retry`; `played` are the manual jobs played before (when the run
    started). ConflictError when the plan and the records disagree (a job without a
    record, a played job that is not manual, a retried job that is not in the run)."""
    by_name = _records_by_name(plan, records)
    for name in play:
        if name not in by_name or _planned(plan, name).when is not When.MANUAL:
            raise ConflictError(f"run resume: job {name!r} is not a manual job of this run")
    for name in retry:
        _planned(plan, name)
    results = _replay(plan, by_name, frozenset(play), frozenset(played))
    held = set(play)
    again = set(retry)  # the retried jobs and the never-run jobs after them
    for planned in plan.jobs:
        name = planned.name
        record = by_name[name]
        result = results.get(name)
        if name in again or record.attempt:
            continue
        if record.status in (Status.SKIPPED, Status.CANCELED) and again.intersection(
            planned.depends_on
        ):
            again.add(name)
        elif (
            record.status is Status.SKIPPED
            and result is not None
            and result.outcome is Outcome.BLOCKED
            and result.blocked_by in play
        ):
            held.add(name)
    held |= again
    rerun = tuple(p.name for p in plan.jobs if p.name in held)
    return Resume(
        play=frozenset(play),
        rerun=rerun,
        kept={name: r for name, r in by_name.items() if name not in held},
        results={name: r for name, r in results.items() if name not in held},
        attempts={name: _executions(by_name[name]) for name in rerun},
    )


def _executions(record: JobRecord) -> int:
    """How many attempts of the job ended: a retry request names the attempt to come, and
    a `running` attempt is followed again as the same attempt (`plan_reattach`)."""
    if record.status in (Status.PENDING, Status.RUNNING) and record.attempt:
        return record.attempt - 1
    return record.attempt


def is_interrupted(plan: Plan, records: Iterable[JobRecord]) -> bool:
    """Whether a run's records hold a job that is neither final nor a recorded play or
    retry: its server stopped while it executed (`plan_reattach`)."""
    listed = list(records)
    requests = requested_plays(plan, listed) | requested_retries(listed)
    return any(not r.status.is_final and r.name not in requests for r in listed)


def plan_reattach(plan: Plan, records: Iterable[JobRecord], *, played: Collection[str]) -> Resume:
    """Resume an interrupted run (module docstring): its jobs that are not final run again,
    a `running` one as the same attempt. ConflictError as `plan_resume`."""
    by_name = _records_by_name(plan, records)
    results = _replay(plan, by_name, frozenset(), frozenset(played))
    rerun = tuple(p.name for p in plan.jobs if not by_name[p.name].status.is_final)
    return Resume(
        play=requested_plays(plan, by_name.values()),  # played, not run yet: still played
        rerun=rerun,
        kept={name: r for name, r in by_name.items() if name not in rerun},
        results={name: r for name, r in results.items() if name not in rerun},
        attempts={name: _executions(by_name[name]) for name in rerun},
        followed=frozenset(n for n in rerun if by_name[n].status is Status.RUNNING),
    )


def _planned(plan: Plan, name: str) -> PlannedJob:
    try:
        return plan.job(name)
    except KeyError:
        raise ConflictError(f"run resume: job {name!r} is not in the plan") from None


def _replay(
    plan: Plan,
    records: Mapping[str, JobRecord],
    play: frozenset[str],
    played: frozenset[str],
) -> dict[str, DepResult]:
    """What each final job handed on when the run executed (before `play`). Jobs that are
    still pending or running, and jobs waiting behind them, have no result."""
    results: dict[str, DepResult] = {}
    for planned in plan.jobs:
        name = planned.name
        record = records[name]
        never_ran = record.status in (Status.SKIPPED, Status.MANUAL) or name in play
        if not never_ran:
            if record.status.is_final:
                results[name] = outcome_of(
                    name, record.status, allowed_failure=record.allow_failure
                )
            continue
        if any(dep not in results for dep in planned.depends_on):
            continue
        decision = decide_start(
            name,
            planned.when,
            [results[dep] for dep in planned.depends_on],
            is_played=name in played,
            allow_failure=planned.allow_failure,
            explicit_needs=planned.job.needs is not None,
        )
        # A skipped job the replay would start (a record that no longer matches its plan)
        # hands on what a harmless skip does.
        results[name] = (
            DepResult(name, Outcome.SUCCEEDED) if decision.should_run else decision.result(name)
        )
    return results
