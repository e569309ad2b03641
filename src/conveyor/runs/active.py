"""A run the server's queue executes (runs.queue): its handles, and what a newer run
supersedes of it.

`ActiveRun` holds what the queue steers an executing run with — the cancel event, the
`LiveRun` handle (plays, cancels of some jobs), the event set once it has ended, the task
that executes it (stopped at a server stop when its jobs only wait: `is_detached`) — with its
plan once known and the reason of a supersede that came before it. `QueueSurface` is the
run chain's Surface for it: when the run is planned it notes the plan (and the repo's
auto-cancel mode, with which the queue decides the runs of that repo still waiting) and
applies a supersede that came before, so nothing of the run starts first.
`cancel_superseded` applies `conveyor.supersede`'s decision through the engine.

Must not: parse, plan, execute or write the store (the chain and the engine do).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import structlog

from conveyor.engine.scheduler import LiveRun, RunControls
from conveyor.model import JobRecord, Plan, RunRecord
from conveyor.runs.chain import Started
from conveyor.supersede import AutoCancel, Cancellation, auto_cancel_mode, cancellation

__all__ = [
    "ActiveRun",
    "QueueSurface",
    "cancel_superseded",
    "stop_at_shutdown",
    "supersede_active",
]

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class ActiveRun:
    """An executing run's handles; `repo_mode` its repo's `auto_cancel` (native pipelines),
    `superseded` the reason of a newer run that superseded it before it was planned."""

    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    live: LiveRun = field(default_factory=LiveRun)
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    plan: Plan | None = None  # once planned: which jobs are interruptible
    repo_mode: AutoCancel = "conservative"
    superseded: str | None = None
    task: asyncio.Task[None] | None = None  # the queue worker's task that executes it
    is_detached: bool = False  # stopped with the server while its jobs only waited


def stop_at_shutdown(run_id: str, active: ActiveRun) -> None:
    """Stop executing run `run_id` with the server, past its grace: a run whose jobs only
    wait (no attempt at the executor: a retry's delay, dependencies, a slot) is detached —
    its task cancelled, the run back to `pending` with its records as they are, resumed at
    the next start (runs.launch) —; any other is canceled, its jobs' processes ending with
    the server."""
    if active.live.is_waiting and active.task is not None:
        log.info("queue.run_detached", run_id=run_id)
        active.is_detached = True
        active.task.cancel()
    else:
        active.cancel.set()


def supersede_active(active: ActiveRun, reason: str, run_id: str) -> None:
    """A newer run supersedes executing run `run_id`: decided now when it is planned (with
    its jobs as they are this moment), else once it is (`QueueSurface.open`)."""
    if active.plan is None:
        active.superseded = active.superseded or reason
        return
    cancel_superseded(active, active.plan, active.live.job_records(), reason, run_id)


def cancel_superseded(
    active: ActiveRun, plan: Plan, jobs: Sequence[JobRecord], reason: str, run_id: str
) -> Cancellation:
    """Cancel what a newer run supersedes of run `run_id`, planned as `plan` with job
    records `jobs` (conveyor.supersede), through its engine, which records the reason."""
    mode = auto_cancel_mode(plan.pipeline, active.repo_mode)
    decided = cancellation(mode, plan, jobs)
    if decided.is_whole_run and not active.cancel.is_set():
        active.live.cancel(reason)
    elif decided.jobs:
        active.live.cancel_jobs(decided.jobs, reason)
    if not decided.is_nothing:
        log.info("run.superseded", run_id=run_id, reason=reason, jobs=list(decided.jobs) or "all")
    return decided


class QueueSurface:
    """The run chain's Surface for a queued run (module docstring); what a terminal would
    show is logged. `modes`: the auto-cancel mode of each repo's last planned run."""

    def __init__(self, active: ActiveRun, run: RunRecord, modes: dict[str, AutoCancel]) -> None:
        self._active = active
        self._run = run
        self._modes = modes

    def say(self, text: str) -> None:
        log.warning("run.notice", run_id=self._run.run_id, text=text)

    @contextlib.asynccontextmanager
    async def open(self, plan: Plan, started: Started) -> AsyncIterator[RunControls]:
        active, run = self._active, self._run
        active.plan = plan
        self._modes[run.repo] = auto_cancel_mode(plan.pipeline, active.repo_mode)
        if active.superseded is not None:  # superseded before it was planned: decided now
            cancel_superseded(active, plan, started.run.jobs, active.superseded, run.run_id)
        yield RunControls(cancel=active.cancel, live=active.live)
