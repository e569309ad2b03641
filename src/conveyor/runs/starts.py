"""How a run's record begins, for each caller of the run chain (`runs.chain.RunStart`).

- `NewRun` (`conveyor run`): once planned, the run is created with its jobs `pending`
  (its trigger keeps the event, the pipeline file and the `--job` names, from which
  `conveyor play` plans it again) and claimed by this process. The store is opened only
  then, so an invalid file leaves no `.conveyor/` behind. Dead runs are recovered first.
- `ResumedRun` (`conveyor play`, `conveyor retry`): a manual job of a stored run is played,
  or a failed one retried, inside that run.
  The refusals (unknown job with a did-you-mean, run still executing in another process,
  canceled, job not waiting) are checked before the chain and again under a lock file held
  up to the claim, so of two plays at once the second sees the run executing.
- `QueuedRun` (the server): the run was stored `pending` by the queue and claimed by its
  worker; once planned its pipeline name is stored and listeners hear it started. A run
  that already has job records resumes (its played or retried jobs, stored `pending`, and
  the jobs they held back); a shared workspace first gets the saved artifacts of the jobs
  that ran. A run whose server stopped while its jobs ran on fleet workers is queued again
  with its jobs as they were: it resumes with `engine.resume.plan_reattach` (the running
  attempts followed, not started again).

Must not: render, or execute jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from conveyor.clock import Clock
from conveyor.errors import ConflictError, UsageError
from conveyor.model import Plan, RunRecord, Status
from conveyor.runs.chain import Checkout, Started
from conveyor.runs.records import claim_run, new_run_record, recover_dead_runs

if TYPE_CHECKING:
    from conveyor.engine.resume import Resume
    from conveyor.store.base import RunStore

__all__ = ["NewRun", "QueuedRun", "ResumedRun"]

_LOCK_FILE = "play.lock"

Say = Callable[[str], None]


class NewRun:
    """`conveyor run` (module docstring). `notice` shows the "no pipeline" line (stdout,
    unless the record goes there as JSON); `say` the rest (stderr). `store` is the store
    once opened: the caller closes it."""

    __slots__ = (
        "clock",
        "home",
        "is_created",
        "jobs",
        "notice",
        "pipeline_file",
        "run_id",
        "say",
        "store",
    )

    def __init__(
        self,
        home: Path,
        run_id: str,
        pipeline_file: Path,
        jobs: tuple[str, ...],
        clock: Clock,
        notice: Say,
        say: Say,
        store: RunStore | None = None,
        is_created: bool = False,
    ) -> None:
        self.home = home
        self.run_id = run_id
        self.pipeline_file = pipeline_file
        self.jobs = jobs
        self.clock = clock
        self.notice = notice
        self.say = say
        self.store = store
        self.is_created = is_created

    def is_excluded(self, plan: Plan, reason: str) -> bool:
        self.notice(f"no pipeline: the workflow rules excluded it ({reason})")
        return True

    async def begin(
        self, plan: Plan, secrets: Mapping[str, str], checkout: Checkout, played: frozenset[str]
    ) -> Started:
        from conveyor.store import open_store
        from conveyor.store.paths import run_dir

        store = self.store = open_store(self.home)
        for orphan_id in recover_dead_runs(store, self.clock):
            self.say(f"recovered run {orphan_id}: its conveyor process had died")
        trigger = {"pipeline_file": str(self.pipeline_file), "selected_jobs": list(self.jobs)}
        record = new_run_record(
            plan.event, self.run_id, clock=self.clock, trigger=trigger, plan=plan, secrets=secrets
        )
        run = store.create_run(record)
        self.is_created = True
        claim_run(store, run.run_id)
        return Started(run, store, self.home, run_dir(self.home, run.run_id))

    def finished(self, record: RunRecord) -> None:
        return None


class ResumedRun:
    """`conveyor play RUN JOB` (module docstring), on an open store; with `is_retry`,
    `conveyor retry RUN JOB` (a failed or canceled job, its next attempt)."""

    __slots__ = ("home", "is_retry", "job", "run", "say", "store")

    def __init__(
        self,
        store: RunStore,
        home: Path,
        run: RunRecord,
        job: str,
        say: Say,
        *,
        is_retry: bool = False,
    ) -> None:
        self.store = store
        self.home = home
        self.run = run
        self.job = job
        self.say = say
        self.is_retry = is_retry

    def check(self, run: RunRecord | None = None) -> None:
        """Every refusal that needs only the stored run (UsageError / ConflictError)."""
        from conveyor.engine.resume import check_playable, check_retryable

        run = run or self.run
        _check_job(run, self.job)
        verb = "retry" if self.is_retry else "play"
        if run.status in (Status.RUNNING, Status.PENDING):
            owner = next(
                (pid for rid, pid, _ in self.store.orphaned_runs() if rid == run.run_id), None
            )
            where = f"conveyor process {owner}" if owner else "another conveyor process"
            raise ConflictError(
                f"run {run.run_id}: the run is still {run.status} in {where} ({verb} "
                f"{self.job!r} once it has ended, or stop it with `conveyor cancel {run.run_id}`)"
            )
        check = check_retryable if self.is_retry else check_playable
        check(run, self.job, is_cancel_requested=self.store.is_cancel_requested(run.run_id))

    def is_excluded(self, plan: Plan, reason: str) -> bool:
        raise ConflictError(
            f"run {self.run.run_id}: the pipeline no longer plans this run (its workflow rules "
            f"exclude it: {reason}); start a new run"
        )

    async def begin(
        self, plan: Plan, secrets: Mapping[str, str], checkout: Checkout, played: frozenset[str]
    ) -> Started:
        from conveyor.engine.resume import plan_resume
        from conveyor.store.paths import run_dir

        run_id, job = self.run.run_id, self.job
        with _play_lock(self.home):
            current = self.store.get_run(run_id) or self.run
            self.check(current)
            if self.is_retry:
                resume = plan_resume(plan, current.jobs, (), played=played, retry={job})
            else:
                resume = plan_resume(plan, current.jobs, {job}, played=played)
            claim_run(self.store, run_id)  # first: a running run always has a live owner
            self.store.reopen_run(run_id, status=Status.RUNNING)
        then = [name for name in resume.rerun if name != job]
        doing = "retrying" if self.is_retry else "playing"
        self.say(f"run {run_id}: {doing} {job}" + (f", then {', '.join(then)}" if then else ""))
        return Started(current, self.store, self.home, run_dir(self.home, run_id), resume)

    def finished(self, record: RunRecord) -> None:
        return None


def _check_job(run: RunRecord, job: str) -> None:
    """UsageError when the run has no job `job`, with a did-you-mean over its job names."""
    from conveyor.suggest import closest_name

    names = [record.name for record in run.jobs]
    if job in names:
        return
    waiting = [r.name for r in run.jobs if r.status is Status.MANUAL and not r.attempt]
    close = closest_name(job, names)
    if close:
        hint = f"did you mean {close!r}?"
    elif waiting:
        hint = "manual jobs waiting to be played: " + ", ".join(repr(name) for name in waiting)
    else:
        hint = "it has no manual job waiting to be played"
    raise UsageError(f"run {run.run_id}: no job {job!r} in this run ({hint})")


@contextlib.contextmanager
def _play_lock(home: Path) -> Iterator[None]:
    """One play at a time between its last check and its claim (released on exit, or by
    the kernel when the process dies)."""
    import fcntl

    with (home / _LOCK_FILE).open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        yield


class QueuedRun:
    """A server run picked up by a queue worker (module docstring). `on_start` tells the
    listeners; `started_at` is when the worker picked it up."""

    __slots__ = ("clock", "home", "on_start", "run", "store")

    def __init__(
        self,
        store: RunStore,
        home: Path,
        run: RunRecord,
        clock: Clock,
        on_start: Callable[[RunRecord], Awaitable[None]],
    ) -> None:
        self.store = store
        self.home = home
        self.run = run
        self.clock = clock
        self.on_start = on_start

    def is_excluded(self, plan: Plan, reason: str) -> bool:
        return False  # the run exists already: it ends with no jobs, as planned

    async def begin(
        self, plan: Plan, secrets: Mapping[str, str], checkout: Checkout, played: frozenset[str]
    ) -> Started:
        from conveyor.engine.artifacts import artifacts_dir, restore_artifacts
        from conveyor.store.paths import run_dir

        run, name = self.run, plan.pipeline.name
        # The name is known only now: store it, or the run record shows `"pipeline": ""`.
        self.store.update_run(run.run_id, pipeline_name=name)
        await self.on_start(
            replace(run, status=Status.RUNNING, started_at=self.clock.now(), pipeline_name=name)
        )
        folder = run_dir(self.home, run.run_id)
        folder.mkdir(parents=True, exist_ok=True)
        if run.jobs and not plan.pipeline.isolate_jobs:
            ran = [artifacts_dir(folder, p.name) for p in plan.jobs if _has_run(run, p.name)]
            await asyncio.to_thread(restore_artifacts, ran, checkout.directory)
        # Read now, with no await before the engine attaches the live handle: a play stored
        # before this line is in `current`, a later one reaches the live execution.
        current = self.store.get_run(run.run_id) or run
        resume = _resume_of(plan, current, played)
        return Started(replace(current, pipeline_name=name), self.store, self.home, folder, resume)

    def finished(self, record: RunRecord) -> None:
        return None  # the queue tells its listeners


def _has_run(run: RunRecord, job: str) -> bool:
    return any(j.name == job and j.attempt for j in run.jobs)


def _resume_of(plan: Plan, run: RunRecord, played: frozenset[str]) -> Resume | None:
    """The resume of a run that already has job records (None for a fresh run)."""
    if not run.jobs:
        return None
    import structlog

    from conveyor.engine.resume import (
        is_interrupted,
        plan_reattach,
        plan_resume,
        requested_plays,
        requested_retries,
    )

    play, retry = requested_plays(plan, run.jobs), requested_retries(run.jobs)
    if is_interrupted(plan, run.jobs):  # its server stopped while its jobs ran on workers
        resume = plan_reattach(plan, run.jobs, played=played)
    else:
        resume = plan_resume(plan, run.jobs, play, played=played, retry=retry)
    structlog.get_logger(__name__).info(
        "run.resumed", run_id=run.run_id, play=sorted(play), retry=sorted(retry), rerun=resume.rerun
    )
    return resume
