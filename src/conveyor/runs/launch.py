"""One queued run through the run chain: what the server's run queue (runs.queue) hands each
run it takes.

    final = await launcher.execute(run, active, modes)

- The source: a `MirrorSource` (a worktree of the run's exact sha from the repo's mirror,
  removed afterwards); the start: `QueuedRun` (runs.starts); the surface: the queue's
  (`runs.active.QueueSurface`: cancel, live plays and retries, superseding once planned).
- The event: the trigger stored with the run; when its delivery carried no commit message
  (a GitHub pull request), the head commit's message is read from the mirror first, so
  `[skip ci]` decides (the run ends `skipped`) and jobs see it (`CI_COMMIT_MESSAGE`).
- The request: the repo's pipeline file, sandbox (`[sandbox]` with the repo's `network`),
  fork rule, the server's own secrets (masked in every job's output), and where attempts run:
  this host, or the fleet's workers through a `fleet.executor.CeleryExecutor` with `[executor]
  kind = "celery"` (each task's origin: repo, clone URL, server URL, the run's files token).
- Anything wrong before the engine starts (unfetchable sha, no or invalid pipeline file, an
  unconfigured repo) fails the run with that reason; a launch cancelled at shutdown records
  the run `canceled`, unless the fleet is detaching (its jobs go on on the workers) or the
  queue detached the run because its jobs only waited (`ActiveRun.is_detached`): then it
  goes back to `pending`, its records as they are, and the next start resumes it.

Must not: queue, claim from the queue's order, or decide superseding (runs.queue does).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from conveyor.clock import Clock
from conveyor.engine.executor import Executor
from conveyor.engine.sandbox import Sandbox
from conveyor.errors import ConveyorError
from conveyor.git.checkout import Checkouts, GitAuth
from conveyor.model import Event, RunRecord, Status
from conveyor.runs.active import ActiveRun, QueueSurface
from conveyor.runs.chain import RunRequest, execute_request
from conveyor.runs.records import claim_run, close_run
from conveyor.runs.sources import MirrorSource
from conveyor.runs.starts import QueuedRun
from conveyor.settings import RepoSettings, Settings
from conveyor.store.base import RunStore
from conveyor.store.paths import run_dir
from conveyor.supersede import AutoCancel
from conveyor.triggers import event_from_trigger, needs_head_message, skip_ci_reason

if TYPE_CHECKING:  # the fleet loads only with [executor] kind = "celery"
    from conveyor.fleet.executor import FleetClient

__all__ = ["RunLauncher", "job_sandbox"]

log = structlog.get_logger(__name__)


class RunLauncher:
    """Executes the runs the queue takes (module docstring). `held_secrets`: the server's
    own secret values (masked in job output); `on_started`: told when a run starts;
    `fleet`: the broker client while `[executor] kind = "celery"` (set by the queue)."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: RunStore,
        home: Path,
        env: Mapping[str, str],
        checkouts: Checkouts,
        clock: Clock,
        held_secrets: tuple[str, ...],
        on_started: Callable[[RunRecord], Awaitable[None]],
    ) -> None:
        self.settings = settings
        self.store = store
        self.home = home
        self.env = env
        self.checkouts = checkouts
        self.clock = clock
        self.held_secrets = held_secrets
        self.on_started = on_started
        self.fleet: FleetClient | None = None
        self._fleet_key: bytes | None = None  # fleet.tokens, read when a run goes to workers

    async def execute(
        self, run: RunRecord, active: ActiveRun, modes: dict[str, AutoCancel]
    ) -> RunRecord:
        """Run `run` (stored `pending`) through the chain and return its final record;
        `modes` learns each repo's auto-cancel mode once its run is planned."""
        claim_run(self.store, run.run_id)
        started_at = self.clock.now()
        repo = self.settings.repo(run.repo)
        worktree = self.home / "worktrees" / run.run_id
        source = MirrorSource(
            self.checkouts,
            run.repo,
            repo.clone_url if repo else "",
            self.auth(repo) if repo else None,
            worktree,
            run_dir(self.home, run.run_id),
        )
        start = QueuedRun(self.store, self.home, run, self.clock, self.on_started)
        try:
            event = await self.head_event(run)
            skipped = None if run.jobs else skip_ci_reason(event)  # a resumed run ran before
            if skipped is not None:
                log.info("run.skipped", run_id=run.run_id, repo=run.repo, reason=skipped)
                return close_run(
                    self.store, run, Status.SKIPPED, skipped, self.clock, job_reason=""
                )
            request = RunRequest(
                event,
                repo.pipeline_file if repo else None,
                play=frozenset(_played(run.trigger)),
                reserved_env=self.settings.secret_variables(),
                env=self.env,
                remote_include_allow=self.settings.server.remote_include_allow,
                fork_secrets=repo.fork_secrets if repo else "skip",
                held_secrets=self.held_secrets,  # masked in every job's output
                sandbox=job_sandbox(self.settings, repo),
                executor=self._executor(run, repo),
            )
            surface = QueueSurface(active, run, modes)
            final = await execute_request(request, source, start, surface)
        except ConveyorError as exc:
            # Problems name files inside the worktree: show them relative to the repository.
            reason = str(exc).replace(f"{worktree}/", "")
            log.warning("run.not_started", run_id=run.run_id, reason=reason.splitlines()[0])
            job_reason = "not run: the run failed before its jobs started"
            return close_run(
                self.store, run, Status.FAILED, reason, self.clock,
                job_reason=job_reason, started_at=started_at,
            )  # fmt: skip
        except asyncio.CancelledError:
            if self.fleet is not None and self.fleet.is_detaching:
                raise  # its jobs go on on the workers; the next start re-attaches it
            if active.is_detached:  # its jobs only waited: the next start resumes it
                self.store.reopen_run(run.run_id, status=Status.PENDING)
                raise
            current = self.store.get_run(run.run_id)
            if current is not None and not current.status.is_final:
                reason = "server shutdown"
                close_run(
                    self.store, current, Status.CANCELED, reason, self.clock, job_reason=reason
                )
            raise
        if final is None:  # pragma: no cover - a queued run is never excluded (QueuedRun)
            raise RuntimeError(f"run {run.run_id}: no record")
        return final

    async def head_event(self, run: RunRecord) -> Event:
        """The run's event; when its delivery carried no commit message (a GitHub pull
        request), with its head commit's message read from the mirror (fetched first)."""
        event = event_from_trigger(run.trigger)
        repo = self.settings.repo(run.repo)
        if repo is None or not needs_head_message(event):
            return event
        message = await self.checkouts.commit_message(
            repo.name, repo.clone_url, event.sha, self.auth(repo)
        )
        return replace(event, message=message)

    def auth(self, repo: RepoSettings) -> GitAuth | None:
        """How git authenticates to `repo` (its clone token), or None."""
        token = self.settings.secrets.clone_tokens.get(repo.name)
        return GitAuth(repo.provider, token) if token else None

    def _executor(self, run: RunRecord, repo: RepoSettings | None) -> Executor | None:
        """Where `run`'s attempts run: the fleet with `[executor] kind = "celery"`, else
        None (this host)."""
        if self.fleet is None:
            return None
        from conveyor.fleet.executor import CeleryExecutor
        from conveyor.fleet.tokens import load_fleet_key, run_token

        section = self.settings.executor
        if self._fleet_key is None:  # made once per home: tokens survive a restart
            self._fleet_key = load_fleet_key(self.home)
        origin = {
            "repo": run.repo,
            "clone_url": repo.clone_url if repo else "",
            "server_url": (section.server_url or self.settings.server.public_url or "").rstrip("/"),
            "token": run_token(self._fleet_key, run.run_id),  # the files API (server.runfiles)
            "provider": repo.provider if repo else "",
        }
        return CeleryExecutor(
            self.fleet, origin, pending_timeout_s=section.pending_timeout, clock=self.clock
        )


def _played(trigger: Mapping[str, object]) -> list[str]:
    play = trigger.get("play")
    return [str(job) for job in play] if isinstance(play, list) else []


def job_sandbox(settings: Settings, repo: RepoSettings | None) -> Sandbox:
    """The engine's sandbox for the jobs of `repo` (`[sandbox]`, the repo's `network`)."""
    section = settings.sandbox
    network = repo.network if repo is not None and repo.network is not None else section.network
    return Sandbox(
        mode=section.mode,
        network=network,
        max_processes=section.max_processes,
        max_memory_mb=section.max_memory_mb,
        max_cpu_s=section.max_cpu_s,
    )
