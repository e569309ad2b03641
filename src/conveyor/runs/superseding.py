"""Superseded runs on the server: a new push or request commit cancels what it supersedes of
the older runs of its branch or request (`conveyor.supersede` decides what), naming the new
run in the reason. Used by the run queue (runs.queue), which owns the runs and the lock.

- It happens in the background after the delivery is answered (`supersede_later`), so a
  webhook is acknowledged at intake speed, and under the queue's lock, in order.
- A run executing here through its engine (`runs.active`) is decided now or once planned.
- A run waiting for a worker: its file is not read yet, so its mode is its repo's last
  planned run's (`modes`), else the repo's `auto_cancel`. It is canceled at once when that
  mode decides alone, else once planned (`superseded`: what the queue hands the run when a
  worker takes it). A run executing in another process is left alone.
- A new run whose head commit says `[skip ci]` supersedes nothing (GitLab makes no
  pipeline); when its delivery carried no message, the message is read first.
- At start, the waiting runs that newer waiting runs supersede are decided again
  (`after_restart`: a supersede decided once planned was held in memory).

Must not: execute runs or read pipeline files.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence

import structlog

from conveyor.errors import GitError
from conveyor.model import Event, RunRecord, Status
from conveyor.runs.active import ActiveRun, supersede_active
from conveyor.store.base import RunStore
from conveyor.supersede import (
    AutoCancel,
    cancellation_unplanned,
    older_runs,
    superseded_reason,
)
from conveyor.triggers import event_from_trigger, needs_head_message, skip_ci_reason

__all__ = ["Superseder"]

log = structlog.get_logger(__name__)


class Superseder:
    """Supersedes older runs (module docstring). `lock`: the queue's, taken also by its
    workers to pick up a run; `active`: the runs executing here; `cancel_pending(run_id,
    reason)` closes a waiting run; `head_event` reads a run's event with its head message;
    `repo_mode`: a repo's configured `auto_cancel`."""

    def __init__(
        self,
        store: RunStore,
        *,
        lock: asyncio.Lock,
        active: Mapping[str, ActiveRun],
        cancel_pending: Callable[[str, str], None],
        head_event: Callable[[RunRecord], Awaitable[Event]],
        repo_mode: Callable[[str], AutoCancel],
    ) -> None:
        self.store = store
        self.lock = lock
        self.active = active
        self.cancel_pending = cancel_pending
        self.head_event = head_event
        self.repo_mode = repo_mode
        self.superseded: dict[str, str] = {}  # waiting runs superseded: decided once planned
        self.modes: dict[str, AutoCancel] = {}  # each repo's last planned auto-cancel mode
        self._tasks: set[asyncio.Task[None]] = set()

    def supersede_later(self, new: RunRecord) -> None:
        """Supersede for `new` in the background (in order, under the lock)."""
        task = asyncio.create_task(self._logged(new))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def wait(self, timeout_s: float) -> None:
        """Let the background supersedes finish (at the queue's stop)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout_s)

    async def after_restart(self, waiting: Sequence[RunRecord]) -> None:
        """At start: the waiting runs that newer waiting runs supersede. A newer run whose
        `[skip ci]` is not known yet supersedes nothing (its message is read when it runs)."""
        for new in waiting:
            if needs_head_message(event_from_trigger(new.trigger)):
                continue
            for old in older_runs(waiting, new):
                await self._waiting(old.run_id, superseded_reason(new.run_id))

    async def _logged(self, new: RunRecord) -> None:
        try:
            try:
                skipped = skip_ci_reason(await self.head_event(new))
            except GitError as exc:  # the run fails on its own; it still is the newer commit
                log.warning("run.head_unreadable", run_id=new.run_id, error=str(exc))
                skipped = None
            if skipped is None:  # a skipped run supersedes nothing (GitLab makes no pipeline)
                await self._supersede(new)
        except Exception:  # a store hiccup must not surface as an unretrieved task error
            log.error("run.supersede_failed", run_id=new.run_id, exc_info=True)

    async def _supersede(self, new: RunRecord) -> None:
        reason = superseded_reason(new.run_id)
        async with self.lock:  # as the queue's workers: a waiting run is decided here or taken
            open_runs = await asyncio.to_thread(
                self.store.runs_with_status, [Status.PENDING, Status.RUNNING]
            )
            for old in older_runs(open_runs, new):
                active = self.active.get(old.run_id)
                if active is not None:
                    supersede_active(active, reason, old.run_id)
                elif old.status is Status.PENDING:
                    await self._waiting(old.run_id, reason)

    async def _waiting(self, run_id: str, reason: str) -> None:
        """Supersede a run waiting for a worker (module docstring)."""
        run = await asyncio.to_thread(self.store.get_run, run_id)  # with its jobs (a resume)
        if run is None or run.status is not Status.PENDING:
            return
        mode = self.modes.get(run.repo) or self.repo_mode(run.repo)
        decided = cancellation_unplanned(mode, run.jobs)
        if decided is None:
            self.superseded.setdefault(run_id, reason)
        elif decided.is_whole_run:
            await asyncio.to_thread(self.cancel_pending, run_id, reason)
            log.info("run.superseded", run_id=run_id, reason=reason, jobs="all")
