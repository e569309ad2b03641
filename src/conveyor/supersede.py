"""Superseded runs: a new push to a branch, or a new commit on a pull or merge request,
cancels what GitLab's auto-cancel redundant pipelines would of the older runs of that branch
or request. Pure (core): run records, plans and job records in, decisions out; the queue
(runs.queue) applies them through the engine, naming the new run in the reason.

Which runs are older runs of the same line of work (`line_of_work`): same repo; a `push` run
of the same branch, or a pull/merge request run of the same request number. Tags, runs by
hand (API) and schedules never supersede nor are superseded.

What is canceled (`cancellation`) follows the mode — GitLab's
`workflow:auto_cancel:on_new_commit` for a `.gitlab-ci.yml`, the repo's `auto_cancel` for
native pipelines (default `conservative` for both, `auto_cancel_mode`) — and each planned
job's `interruptible`, as GitLab's documentation and its CancelRedundantPipelinesService
decide:
- `conservative`: the whole run, unless a job that is not interruptible has started (is
  running or has run); a job that has not started counts as interruptible;
- `interruptible`: only the interruptible jobs that are running or waiting to start
  (pending, delayed); the other jobs, running or not, go on, and the run with them. A
  manual job waiting to be played is not canceled (GitLab's manual jobs are not
  cancelable);
- `none`: nothing.
A run is decided with its plan: one not planned yet (waiting for a worker, or checking out)
is decided once it is, before any of its jobs starts — unless its mode decides alone
(`cancellation_unplanned`: `conservative` with nothing started cancels all of it, `none`
nothing), as the queue does for a run still waiting for a worker.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from conveyor.model import EventKind, JobRecord, Pipeline, Plan, PlannedJob, RunRecord, Status, When

__all__ = [
    "AUTO_CANCEL_MODES",
    "NOTHING",
    "AutoCancel",
    "Cancellation",
    "auto_cancel_mode",
    "cancellation",
    "cancellation_unplanned",
    "line_of_work",
    "older_runs",
    "superseded_reason",
]

AutoCancel = Literal["conservative", "interruptible", "none"]
AUTO_CANCEL_MODES: tuple[AutoCancel, ...] = ("conservative", "interruptible", "none")


@dataclass(frozen=True, slots=True)
class Cancellation:
    """What a newer run cancels of an older one: the whole run (`is_whole_run`), else
    these `jobs` alone (none: nothing)."""

    is_whole_run: bool = False
    jobs: tuple[str, ...] = ()

    @property
    def is_nothing(self) -> bool:
        return not self.is_whole_run and not self.jobs


NOTHING = Cancellation()
_WHOLE_RUN = Cancellation(is_whole_run=True)


def line_of_work(run: RunRecord) -> tuple[str, str, str] | None:
    """What a newer run of the same work shares with `run`; None: never superseded."""
    if run.event is EventKind.PUSH:
        return (run.repo, "branch", run.ref)
    if run.event.is_change_request:
        change = run.trigger.get("change")
        number = change.get("number") if isinstance(change, Mapping) else None
        if isinstance(number, int):
            return (run.repo, str(run.event), str(number))
    return None


def cancellation(mode: AutoCancel, plan: Plan, jobs: Sequence[JobRecord]) -> Cancellation:
    """What is canceled of an older run planned as `plan` whose job records are `jobs`
    (a planned job without a record has not started), in `mode` (module docstring)."""
    if mode == "none":
        return NOTHING
    interruptible = {p.name for p in plan.jobs if p.job.interruptible}
    if mode == "conservative":
        started = [job for job in jobs if _has_started(job)]
        if all(job.name in interruptible for job in started):
            return _WHOLE_RUN
        return NOTHING
    records = {job.name: job for job in jobs}
    return Cancellation(
        jobs=tuple(
            p.name
            for p in plan.jobs
            if p.name in interruptible and _is_cancelable(p, records.get(p.name))
        )
    )


def cancellation_unplanned(mode: AutoCancel, jobs: Sequence[JobRecord]) -> Cancellation | None:
    """What is canceled of an older run not planned yet (its file not read) whose mode is
    `mode` as far as it is known; None: only its plan can tell (mode `interruptible`: which
    jobs are interruptible is in its file; or a resumed run whose jobs have started)."""
    if mode == "none":
        return NOTHING
    if mode == "interruptible" or any(_has_started(job) for job in jobs):
        return None
    return _WHOLE_RUN  # conservative, and nothing started: interruptible all of it


def _has_started(job: JobRecord) -> bool:
    return job.started_at is not None or job.status is Status.RUNNING


def _is_cancelable(planned: PlannedJob, record: JobRecord | None) -> bool:
    """Running, or waiting to start (GitLab's created, pending, scheduled); not a manual
    job waiting to be played, nor a job that has ended."""
    status = record.status if record is not None else Status.PENDING
    if status is Status.RUNNING:
        return True
    return status is Status.PENDING and planned.when is not When.MANUAL


def superseded_reason(new_run_id: str) -> str:
    return f"superseded by run {new_run_id} (a newer commit of the same branch or request)"


def older_runs(candidates: Sequence[RunRecord], new: RunRecord) -> list[RunRecord]:
    """The runs of `candidates` that `new` supersedes: same line of work, created before it,
    not final."""
    key = line_of_work(new)
    if key is None:
        return []
    return [
        run
        for run in candidates
        if run.run_id != new.run_id
        and not run.status.is_final
        and run.created_at <= new.created_at
        and line_of_work(run) == key
    ]


def auto_cancel_mode(pipeline: Pipeline | None, repo_mode: AutoCancel) -> AutoCancel:
    """A `.gitlab-ci.yml`'s own `workflow:auto_cancel:on_new_commit`, else the repo's."""
    if pipeline is not None and pipeline.flavor == "gitlab":
        written = pipeline.auto_cancel or "conservative"
        return next((mode for mode in AUTO_CANCEL_MODES if mode == written), "conservative")
    return repo_mode
