"""Superseded runs: a new push to a branch, or a new commit on a pull or merge request,
cancels the older runs of that branch or request still pending or running, as GitLab's
auto-cancel redundant pipelines. Pure: run records and plans in, decisions out; the queue
(runs.queue) does the canceling and names the new run in the canceled run's reason.

Which runs are older runs of the same line of work (`line_of_work`): same repo; a `push` run
of the same branch, or a pull/merge request run of the same request number. Tags, runs by
hand (API) and schedules never supersede nor are superseded.

What is canceled (`should_cancel`) follows the mode: GitLab's
`workflow:auto_cancel:on_new_commit` for a `.gitlab-ci.yml`, the repo's `auto_cancel` for
native pipelines (default `conservative` for both), with each job's `interruptible`:
- `conservative`: the run, unless one of its jobs that is not interruptible has started;
- `interruptible`: the run, unless a job that is not interruptible is running right now.
  conveyor cancels runs, not single jobs: where GitLab would cancel the interruptible jobs
  around a running non-interruptible one, conveyor leaves that run alone;
- `none`: nothing.
A run that has not started a job (waiting for a worker, or checking out) is canceled in both
modes but `none`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from conveyor.model import EventKind, JobRecord, Pipeline, RunRecord, Status

__all__ = [
    "AUTO_CANCEL_MODES",
    "AutoCancel",
    "auto_cancel_mode",
    "line_of_work",
    "older_runs",
    "should_cancel",
    "superseded_reason",
]

AutoCancel = Literal["conservative", "interruptible", "none"]
AUTO_CANCEL_MODES: tuple[AutoCancel, ...] = ("conservative", "interruptible", "none")


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


def should_cancel(mode: AutoCancel, pipeline: Pipeline | None, jobs: Sequence[JobRecord]) -> bool:
    """Whether an older run with these job records is canceled (module docstring).
    `pipeline`: the run's parsed pipeline, None while it is not known yet (then every job
    that has started counts as not interruptible)."""
    if mode == "none":
        return False
    interruptible = {job.name for job in pipeline.jobs if job.interruptible} if pipeline else set()
    if mode == "conservative":
        concerned = [j for j in jobs if j.started_at is not None or j.status is Status.RUNNING]
    else:
        concerned = [j for j in jobs if j.status is Status.RUNNING]
    return all(job.name in interruptible for job in concerned)


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
