"""The server's run queue: triggers become `pending` runs; N workers execute them.

A trigger (webhook or API) stores a RunRecord with status `pending` and the Event in
`trigger` (so it survives a restart) and puts its id on an in-memory queue; that is all the
request path does. Each worker takes a run and hands it to `runs.launch.RunLauncher`, which
runs it through the run chain (runs.chain) from a worktree of the exact sha (a `[skip ci]`
head commit ends it `skipped`: listeners hear nothing of it, as of a skipped push); anything
wrong before the engine starts fails the *run* with that reason, and the server goes on; a
worker cancelled at shutdown past its grace records the run `canceled`. Listeners
(`RunListener`, e.g. the commit status and Slack notifiers) are told when a run starts and
ends, each call in its own task with a deadline, so they never hold up a worker.

Playing a manual job (`play`) happens in the same run, as in GitLab. While a worker executes
the run, the job starts inside that execution (`engine.live.LiveRun`). When the run has
ended, it is resumed: `reopen_run` puts it back to `pending` (finished time and reason
cleared), the played job's record is stored `pending` — the play request, which survives a
restart — and the run is queued again; the worker then runs the played job and the jobs it
held back (`engine.resume`), and listeners hear of the run's start and new final status as
for any run. Retrying a failed or canceled job (`retry`) goes the same two ways, with the
job stored `pending` as its next attempt as the request (`engine.resume.retry_request`). A
play arriving as the live run's last job ends waits for the final record and then resumes
the run (the hand-over rule is in `engine.execution`); it waits within the HTTP request's
deadline (`play_wait_s`: 0.8 of `server.request_timeout`, at most 30 s), past which it is
refused with `errors.RunEnding` (409 run_ending), having done nothing. Plays are
serialized by one lock, which workers (to pick up a run) and cancels also take, so of two
plays of one job exactly one wins. A run canceled before a worker picks it up, or one
that fails or is shut down before its engine starts, closes the records still `pending` (a
play request) or `running` as `canceled` with a reason (`runs.records.cancel_open_jobs`):
GitLab shows the jobs of such a pipeline as canceled, and a played job never stays
`pending` in a final run.

With `[executor] kind = "celery"` each run's attempts go to the fleet's workers (runs.launch;
one `FleetClient` per queue, opened at start, closed at stop). At stop such runs are not
canceled: the queue detaches from them (their jobs go on on the workers; the runs stay
`running`), and the next start puts them back to `pending` to re-attach to their attempts
(`_requeue_interrupted`).

Superseded runs: a new push or request commit supersedes the older runs of its branch or
request, in the background after the delivery is answered and under the same lock
(runs.superseding).

Start: runs whose owner process died are recovered (`engine.recovery`), then stored `pending`
runs are queued again, oldest first, and those superseded by newer waiting runs decided.
Stop: take no new runs, let running ones finish for up to `grace_s`, then cancel them (the
engine kills their process groups) and wait for their final records; a run whose jobs only
wait then (a retry's delay, dependencies: no attempt at the executor) is detached instead,
back to `pending` with its records, so the next start resumes it, an owed retry included
(`runs.active.stop_at_shutdown`). This module does not parse webhooks nor serve HTTP.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from conveyor.clock import SYSTEM_CLOCK, Clock
from conveyor.engine.resume import (
    check_playable,
    check_retryable,
    play_request,
    retry_request,
)
from conveyor.errors import ConflictError, RunEnding
from conveyor.git.checkout import Checkouts
from conveyor.model import Event, EventKind, RunRecord, Status
from conveyor.runs.active import ActiveRun, stop_at_shutdown
from conveyor.runs.intake import DeliveryIntake
from conveyor.runs.launch import RunLauncher
from conveyor.runs.listeners import Listeners, RunListener
from conveyor.runs.records import cancel_open_jobs, new_run_record, recover_dead_runs
from conveyor.runs.superseding import Superseder
from conveyor.settings import RepoSettings, Settings, held_secret_values
from conveyor.store.base import BodySeen, RunStore
from conveyor.store.paths import new_run_id
from conveyor.supersede import AutoCancel, line_of_work
from conveyor.triggers import skip_ci_reason

if TYPE_CHECKING:  # the fleet loads only with [executor] kind = "celery"
    from conveyor.fleet.executor import FleetClient

__all__ = ["Queued", "RunQueue"]

log = structlog.get_logger(__name__)

_CANCEL_WAIT_S = 30.0
_PLAY_WAIT_S = 30.0  # a play that arrives as a run ends waits at most this for its final record


@dataclass(frozen=True, slots=True)
class Queued:
    """The answer to a trigger: the run id, and whether the delivery was seen before."""

    run_id: str
    duplicate: bool = False


class RunQueue:
    def __init__(
        self,
        settings: Settings,
        *,
        store: RunStore,
        home: Path,
        env: Mapping[str, str],
        listeners: Sequence[RunListener] = (),
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.settings = settings
        self.store = store
        self.home = home
        self.env = env
        self.clock = clock
        # A trigger variable equal to one of the server's own secrets is stored masked (and
        # so reaches the jobs as `[MASKED]`): neither the database nor a job gets it.
        self._held_secrets = {
            f"conveyor server secret {n}": value
            for n, value in enumerate(held_secret_values(settings, env), 1)
        }
        self.listeners = Listeners(listeners)
        self.checkouts = Checkouts(home / "mirrors", timeout_s=settings.server.git_timeout, env=env)
        self._waiting: asyncio.Queue[str] = asyncio.Queue()
        self._intake = DeliveryIntake(store, self._queue_new)
        self._active: dict[str, ActiveRun] = {}
        self._workers: list[asyncio.Task[None]] = []
        self._accepting = False
        self._plays = asyncio.Lock()
        # A play or retry handed over as its run ends waits for the final record within the
        # HTTP request's deadline, so its answer is its own (409 run_ending), not the
        # deadline's 503 (or a 500 past a deadline longer than the wait).
        self.play_wait_s = min(_PLAY_WAIT_S, 0.8 * settings.server.request_timeout)
        self.fleet: FleetClient | None = None  # [executor] kind = "celery": opened at start
        self._launcher = RunLauncher(
            settings,
            store=store,
            home=home,
            env=env,
            checkouts=self.checkouts,
            clock=clock,
            held_secrets=tuple(self._held_secrets.values()),
            on_started=self._started,
        )
        self._superseder = Superseder(
            store,
            lock=self._plays,
            active=self._active,
            cancel_pending=self._cancel_pending,
            head_event=self._launcher.head_event,
            repo_mode=self._repo_mode,
        )

    @property
    def is_running(self) -> bool:
        workers_ok = all(not w.done() for w in self._workers)
        return self._accepting and workers_ok

    @property
    def active_runs(self) -> tuple[str, ...]:
        return tuple(self._active)

    def add_listener(self, listener: RunListener) -> None:
        self.listeners.add(listener)

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        broker_url = self.settings.secrets.broker_url
        if self.settings.executor.kind == "celery" and broker_url:
            from conveyor.fleet.executor import FleetClient

            self.fleet = self._launcher.fleet = FleetClient(broker_url)
            reattached = await asyncio.to_thread(self._requeue_interrupted)
            if reattached:
                log.info("queue.reattaching", runs=reattached)
        recovered = await asyncio.to_thread(recover_dead_runs, self.store, self.clock)
        await self.checkouts.discard_worktrees(self.home / "worktrees")
        pending = await asyncio.to_thread(self.store.runs_with_status, [Status.PENDING])
        for run in pending:
            self._waiting.put_nowait(run.run_id)
        await self._superseder.after_restart(pending)
        self._accepting = True
        self._workers = [
            asyncio.create_task(self._work(), name=f"run-worker-{n}")
            for n in range(self.settings.server.max_parallel_runs)
        ]
        log.info("queue.started", resumed=len(pending), recovered=recovered)

    async def stop(self, grace_s: float | None = None) -> None:
        """Stop taking runs; give running ones `grace_s` (default server.shutdown_grace),
        then cancel them and wait for their final records."""
        grace = self.settings.server.shutdown_grace if grace_s is None else grace_s
        self._accepting = False
        busy = [w for w in self._workers if not w.done()]
        idle_wait = asyncio.gather(*busy, return_exceptions=True)
        for _ in busy:
            self._waiting.put_nowait("")  # wakes idle workers; they exit on ""
        if self.fleet is not None:  # jobs run on workers: leave them running, detach
            self.fleet.is_detaching = True
            log.info("queue.detaching", runs=list(self._active))
            for worker in self._workers:
                worker.cancel()
            await asyncio.gather(*self._workers, return_exceptions=True)
            grace = 0.0
        try:
            async with asyncio.timeout(grace):
                await asyncio.shield(idle_wait)
        except TimeoutError:
            log.warning("queue.grace_passed", canceling=list(self._active), grace_s=grace)
            for run_id, active in self._active.items():
                stop_at_shutdown(run_id, active)
            try:
                async with asyncio.timeout(_CANCEL_WAIT_S):
                    await asyncio.shield(idle_wait)
            except TimeoutError:
                for worker in self._workers:
                    worker.cancel()
                await asyncio.gather(*self._workers, return_exceptions=True)
        await self._superseder.wait(_CANCEL_WAIT_S)
        await self.listeners.wait()
        if self.fleet is not None:
            await self.fleet.close()
        log.info("queue.stopped")

    # ------------------------------------------------------------ triggers

    async def enqueue(
        self,
        event: Event,
        *,
        delivery_id: str | None = None,
        body_digest: str | None = None,
        play: Sequence[str] = (),
    ) -> Queued:
        """Store a `pending` run for `event` and queue it; a delivery seen before (by its
        id, or by `body_digest` within `server.webhook_duplicate_window`) queues nothing
        and answers its first run id. `play`: manual jobs to run."""
        run = new_run_record(
            event,
            new_run_id(),
            clock=self.clock,
            trigger={"play": list(play)},
            secrets=self._held_secrets,
        )
        skipped = skip_ci_reason(event)
        if skipped is not None:  # stored final, so it shows why nothing ran; never queued
            run = replace(run, status=Status.SKIPPED, finished_at=run.created_at, reason=skipped)
        # Deliveries: a group commit that also queues the new runs (runs.intake), so a
        # cancelled request cannot strand its run.
        window_s = self.settings.server.webhook_duplicate_window
        body = None
        if body_digest is not None and window_s > 0:
            body = BodySeen(body_digest, since=run.created_at - timedelta(seconds=window_s))
        key = delivery_id or body_digest  # a delivery without an id: its body is its key
        if key is not None:
            existing = await self._intake.record(run, key, body)
            if existing:
                return Queued(existing, duplicate=True)
        else:
            self.store.create_run(run)
            self._queue_new(run)
        if run.status is Status.PENDING and line_of_work(run) is not None:
            # In the background: the delivery is acknowledged at intake speed, and the
            # older runs are canceled in order under the queue's lock (runs.superseding).
            self._superseder.supersede_later(run)
        return Queued(run.run_id)

    def _queue_new(self, run: RunRecord) -> None:
        if run.status is Status.SKIPPED:
            log.info("run.skipped", run_id=run.run_id, repo=run.repo, reason=run.reason)
            return
        self._waiting.put_nowait(run.run_id)
        log.info("run.queued", run_id=run.run_id, repo=run.repo, ref=run.ref, sha=run.sha)

    async def trigger(
        self,
        repo: str,
        ref: str,
        sha: str | None = None,
        variables: Mapping[str, str] | None = None,
        kind: EventKind = EventKind.MANUAL,
    ) -> RunRecord:
        """A run asked for through the API. Without `sha`, the ref is resolved by fetching
        the mirror (raises GitError when the ref does not exist)."""
        settings = self._repo(repo)
        if sha is None:
            sha = await self.checkouts.resolve_ref(
                settings.name, settings.clone_url, ref, self._launcher.auth(settings)
            )
        event = Event(
            kind=kind,
            ref=ref,
            sha=sha,
            repo=settings.name,
            default_branch=settings.default_branch,
            variables=dict(variables or {}),
        )
        queued = await self.enqueue(event)
        run = await asyncio.to_thread(self.store.get_run, queued.run_id)
        if run is None:  # pragma: no cover - the row was written just above
            raise LookupError(queued.run_id)
        return run

    async def cancel(self, run_id: str) -> bool:
        """Cancel a pending or running run; False when it is unknown or already final."""
        # Under the lock a worker takes to pick up a run: a pending run is either canceled
        # here or taken by the worker (then canceled through its engine), never both.
        async with self._plays:
            active = self._active.get(run_id)
            if active is not None:
                active.cancel.set()
                await asyncio.to_thread(self.store.request_cancel, run_id)
                return True
            run = await asyncio.to_thread(self.store.get_run, run_id)
            if run is None or run.status.is_final:
                return False
            if run.status is Status.PENDING:
                await asyncio.to_thread(self._cancel_pending, run_id)
                return True
        # Running in another process (e.g. `conveyor run`): ask through the store.
        return await asyncio.to_thread(self.store.request_cancel, run_id)

    def _cancel_pending(self, run_id: str, reason: str = "canceled before it started") -> None:
        # A resumed run waiting for a worker holds its play requests as `pending` jobs.
        cancel_open_jobs(self.store, run_id, reason, self.clock)
        now = self.clock.now()
        self.store.update_run(run_id, status=Status.CANCELED, finished_at=now, reason=reason)

    async def play(self, run_id: str, job: str) -> RunRecord | None:
        """Play manual job `job` of run `run_id` in that same run (module docstring) and
        return the run's record. None when the run is unknown; ConflictError when the run was
        canceled, runs in another process or is stopping, or `job` is not a manual job
        waiting to be played."""
        return await self._rerun(run_id, job, is_retry=False)

    async def retry(self, run_id: str, job: str) -> RunRecord | None:
        """Retry failed or canceled job `job` of run `run_id` in that same run, as its next
        attempt (module docstring), and return the run's record. None when the run is
        unknown; ConflictError when the run was canceled, runs in another process or is
        stopping, or `job` did not fail."""
        return await self._rerun(run_id, job, is_retry=True)

    async def _rerun(self, run_id: str, job: str, *, is_retry: bool) -> RunRecord | None:
        while True:
            async with self._plays:
                run = await asyncio.to_thread(self.store.get_run, run_id)
                if run is None:
                    return None
                active = self._active.get(run_id)
                ending = await self._rerun_locked(run, job, active, is_retry=is_retry)
                if ending is None:
                    return await asyncio.to_thread(self.store.get_run, run_id)
            # The run is being recorded (its last job ended): resume it once it is final.
            try:
                async with asyncio.timeout(self.play_wait_s):
                    await ending.wait()
            except TimeoutError:
                verb = "retry" if is_retry else "play"
                raise RunEnding(
                    f"run {run_id}: its last job ended and its final record was not written "
                    f"within {self.play_wait_s:g} s; nothing was done ({verb} {job!r} again once "
                    "the run has ended: that resumes it)"
                ) from None

    async def _rerun_locked(
        self, run: RunRecord, job: str, active: ActiveRun | None, *, is_retry: bool
    ) -> asyncio.Event | None:
        """One attempt of a play or retry, under the lock: None when done, else the event
        that tells the executing run has ended."""
        run_id = run.run_id
        check = check_retryable if is_retry else check_playable
        verb, event = ("retry", "run.retried") if is_retry else ("play", "run.played")
        if active is not None and active.live.is_started:
            check(run, job, is_cancel_requested=active.cancel.is_set())
            started = active.live.retry(job) if is_retry else active.live.play(job)
            if not started:
                return active.finished
            log.info(event, run_id=run_id, job=job, live=True)
            return None
        canceled = await asyncio.to_thread(self.store.is_cancel_requested, run_id)
        record = check(run, job, is_cancel_requested=canceled)
        if run.status is Status.RUNNING and active is None:
            raise ConflictError(
                f"run {run_id}: the run executes in another conveyor process "
                f"({verb} its jobs once it has ended)"
            )
        is_final = run.status.is_final
        if is_final:  # back to `pending` for a worker to resume: finished time, reason cleared
            self.store.reopen_run(run_id, status=Status.PENDING)
        # The request, stored: a play is the job `pending` with no attempt, a retry the job
        # `pending` as its next attempt. A run whose worker is still checking out reads it
        # when its engine starts; a reopened run when it is resumed.
        request = retry_request(record) if is_retry else play_request(record)
        self.store.save_job(run_id, request)
        if is_final:
            self._queue_new(run)
        log.info(event, run_id=run_id, job=job, live=False)
        return None

    # ------------------------------------------------------------ workers

    async def _work(self) -> None:
        while True:
            run_id = await self._waiting.get()
            if not run_id or not self._accepting:
                return
            try:
                await self._run(run_id)
            except Exception:  # the per-run guard: one broken run must not stop the worker
                log.error("run.crashed", run_id=run_id, exc_info=True)

    async def _run(self, run_id: str) -> None:
        async with self._plays:  # a play in progress finishes its writes first
            superseded = self._superseder.superseded.pop(run_id, None)
            run = await asyncio.to_thread(self.store.get_run, run_id)
            if run is None or run.status is not Status.PENDING or run_id in self._active:
                return  # canceled while waiting, taken by someone else, or queued twice
            active = ActiveRun(
                repo_mode=self._repo_mode(run.repo),
                superseded=superseded,
                task=asyncio.current_task(),
            )
            self._active[run_id] = active
        try:
            final = await self._launcher.execute(run, active, self._superseder.modes)
        finally:
            del self._active[run_id]
            active.finished.set()
        if final.status is Status.SKIPPED:  # `[skip ci]`: nothing started, nothing to report
            return
        self.listeners.run_finished(final)
        log.info("run.finished", run_id=run_id, status=str(final.status), reason=final.reason)

    async def _started(self, run: RunRecord) -> None:
        self.listeners.run_started(run)

    # ------------------------------------------------------------ helpers

    def _requeue_interrupted(self) -> list[str]:
        """Runs a stopped server left `running` while their jobs ran on workers go back to
        `pending` with their job records as they are: picked up again, they re-attach to
        the attempts still running (runs.starts, engine.resume.plan_reattach)."""
        from conveyor.engine.recovery import is_alive

        requeued = []
        for run_id, owner_pid, owner_ticks in self.store.orphaned_runs():
            if not is_alive(owner_pid, owner_ticks):
                self.store.reopen_run(run_id, status=Status.PENDING)
                requeued.append(run_id)
        return requeued

    def _repo(self, name: str) -> RepoSettings:
        repo = self.settings.repo(name)
        if repo is None:
            raise KeyError(name)
        return repo

    def _repo_mode(self, name: str) -> AutoCancel:
        repo = self.settings.repo(name)
        return repo.auto_cancel if repo is not None else "conservative"
