"""One server run from start to final record: the chain a queue worker follows.

    claim -> checkout (mirror + worktree at the exact sha) -> changed files (before..after)
    -> load the pipeline file of that commit -> plan -> engine.scheduler.execute_run
    -> remove the worktree

A run that already has job records is a resumed one (a manual job was played after the
run ended, see `server.queue.RunQueue.play`): it is checked out and planned the same way,
then `engine.resume.plan_resume` picks the played jobs (stored `pending` with no attempt)
and the jobs they held back, and the engine runs only those, keeping every other record.
Isolated pipelines (GitLab's) fetch earlier artifacts from the run folder as usual; a
pipeline sharing one workspace gets the saved artifacts of the jobs that ran copied into
the fresh worktree first (its other leftovers are gone with the old worktree).

GitLab `rules:changes:compare_to` diffs (`git.describe.add_compare_changes`) are computed when the
run is first planned and saved in its folder (`changes_by_ref.json`); a resumed run plans
with the saved diffs, so a branch that moved since (e.g. `main`) cannot change its plan.

Anything that goes wrong before the engine starts (unfetchable sha, no or invalid pipeline
file) fails the *run* with that reason; the server goes on. If the worker task itself is
cancelled (shutdown past its grace), the run is recorded `canceled` and the CancelledError
propagates. Either way the job records still `pending` (a play request of a resumed run) or
`running` are closed as `canceled` with a reason (`cancel_open_jobs`). This module owns no
HTTP, no queueing and no job execution of its own.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import orjson
import structlog

from conveyor.config import load_pipeline
from conveyor.engine.artifacts import artifacts_dir, restore_artifacts
from conveyor.engine.recovery import process_start_ticks
from conveyor.engine.resume import Resume, plan_resume, requested_plays
from conveyor.engine.scheduler import LiveRun, execute_run
from conveyor.errors import ConveyorError
from conveyor.git.checkout import Checkouts, GitAuth, find_pipeline_file
from conveyor.git.describe import changes_lookup
from conveyor.model import Event, Pipeline, Plan, RunRecord, Status
from conveyor.outbound.remote import HttpRemoteFetcher
from conveyor.plan import plan as plan_run
from conveyor.secrets import secret_values
from conveyor.store.base import RunStore
from conveyor.store.logfiles import RunLogs
from conveyor.store.paths import run_dir

__all__ = ["DEFAULT_CONCURRENCY", "RunSpec", "cancel_open_jobs", "execute_server_run"]

log = structlog.get_logger(__name__)

DEFAULT_CONCURRENCY = 4
_CHANGES_FILE = "changes_by_ref.json"


@dataclass(frozen=True, slots=True)
class RunSpec:
    """Everything one run needs besides the store and the mirrors."""

    run: RunRecord
    event: Event
    clone_url: str
    pipeline_file: str | None
    auth: GitAuth | None
    home: Path
    env: Mapping[str, str]
    cancel: asyncio.Event
    play: frozenset[str] = frozenset()
    live: LiveRun | None = None  # plays manual jobs while the run executes
    reserved_env: frozenset[str] = frozenset()  # conveyor's own secrets: never for pipelines


async def execute_server_run(
    spec: RunSpec,
    *,
    store: RunStore,
    checkouts: Checkouts,
    on_start: Callable[[RunRecord], Awaitable[None]],
) -> RunRecord:
    """Run `spec.run` (stored as `pending`) and return its final record."""
    run = spec.run
    pid = os.getpid()
    store.claim_run(run.run_id, owner_pid=pid, owner_started_ticks=process_start_ticks(pid) or 0)
    started_at = datetime.now(UTC)
    if not spec.clone_url:
        return _fail(store, run, started_at, f"run: repository {run.repo!r} is not configured")
    mirror = None
    worktree = spec.home / "worktrees" / run.run_id
    try:
        mirror = await checkouts.ensure_commit(run.repo, spec.clone_url, run.sha, spec.auth)
        await checkouts.add_worktree(run.repo, mirror, run.sha, worktree)
        event = replace(
            spec.event,
            changed_files=await checkouts.changed_files(
                run.repo, mirror, spec.event.before_sha, run.sha
            ),
            files=await checkouts.list_files(run.repo, mirror, run.sha),
        )
        path = find_pipeline_file(worktree, spec.pipeline_file)
        # The event decides GitLab's include:rules (its predefined variables, changed files).
        pipeline: Pipeline = await asyncio.to_thread(
            load_pipeline,
            path,
            event=event,
            changes_since=changes_lookup(worktree, event.sha),
            fetch=HttpRemoteFetcher(),
        )
        folder = run_dir(spec.home, run.run_id)
        event = await asyncio.to_thread(_add_compare_changes, worktree, pipeline, event, folder)
        # The name is known only now: store it, or the run record shows `"pipeline": ""`.
        store.update_run(run.run_id, pipeline_name=pipeline.name)
        await on_start(
            replace(run, status=Status.RUNNING, started_at=started_at, pipeline_name=pipeline.name)
        )
        return await _execute(spec, pipeline, event, worktree, store)
    except ConveyorError as exc:
        # Problems name files inside the worktree: show them relative to the repository.
        reason = str(exc).replace(f"{worktree}/", "")
        log.warning("run.not_started", run_id=run.run_id, reason=reason.splitlines()[0])
        return _fail(store, run, started_at, reason)
    except asyncio.CancelledError:
        _record_canceled(store, run)
        raise
    finally:
        if mirror is not None and worktree.exists():
            await asyncio.shield(checkouts.remove_worktree(run.repo, mirror, worktree))


async def _execute(
    spec: RunSpec, pipeline: Pipeline, event: Event, worktree: Path, store: RunStore
) -> RunRecord:
    run = spec.run
    plan = plan_run(pipeline, event)
    names = {*pipeline.secrets, *(name for job in pipeline.jobs for name in job.secrets)}
    refused = names & spec.reserved_env
    if refused:
        # A pushed commit must not read conveyor's own tokens by declaring their names.
        log.warning("run.secrets_refused", run_id=run.run_id, names=sorted(refused))
    folder = run_dir(spec.home, run.run_id)
    folder.mkdir(parents=True, exist_ok=True)
    if run.jobs and not pipeline.isolate_jobs:
        ran = [artifacts_dir(folder, p.name) for p in plan.jobs if _has_run(run, p.name)]
        await asyncio.to_thread(restore_artifacts, ran, worktree)
    # Read now, with no await before the engine attaches `spec.live`: a play recorded in the
    # store before this line is in `current`, a later one reaches the live execution.
    current = store.get_run(run.run_id) or run
    resume = _resume_of(plan, current, spec.play)
    logs = RunLogs(folder)
    try:
        return await execute_run(
            plan,
            run=replace(current, pipeline_name=pipeline.name),
            store=store,
            logs=logs,
            workspace=worktree,
            run_dir=folder,
            concurrency=pipeline.concurrency or DEFAULT_CONCURRENCY,
            secrets=secret_values(sorted(names - refused), spec.env),
            base_env=spec.env,
            play=spec.play,
            resume=resume,
            live=spec.live,
            cancel=spec.cancel,
            home=spec.home,
        )
    finally:
        logs.close()


def _has_run(run: RunRecord, job: str) -> bool:
    return any(j.name == job and j.attempt for j in run.jobs)


def _resume_of(plan: Plan, run: RunRecord, played: frozenset[str]) -> Resume | None:
    """The resume of a run that already has job records (None for a fresh run)."""
    if not run.jobs:
        return None
    resume = plan_resume(plan, run.jobs, requested_plays(plan, run.jobs), played=played)
    log.info("run.resumed", run_id=run.run_id, play=sorted(resume.play), rerun=resume.rerun)
    return resume


def _add_compare_changes(worktree: Path, pipeline: Pipeline, event: Event, folder: Path) -> Event:
    """`event` with the `rules:changes:compare_to` diffs saved when the run was first
    planned; computed (the mirror's branches and tags, diffed in the worktree) and saved the
    first time. A saved file that cannot be read is computed again."""
    from conveyor.git.describe import add_compare_changes
    from conveyor.plan import compare_to_refs

    saved = folder / _CHANGES_FILE
    try:
        data = orjson.loads(saved.read_bytes())
    except FileNotFoundError:
        data = None
    except (OSError, orjson.JSONDecodeError) as exc:
        log.warning("run.compare_changes_unreadable", path=str(saved), error=str(exc))
        data = None
    if isinstance(data, dict):
        changes = {str(ref): tuple(str(p) for p in paths) for ref, paths in data.items()}
        return replace(event, changes_by_ref=changes)
    event = add_compare_changes(worktree, event, compare_to_refs(pipeline, event))
    if event.changes_by_ref is not None:
        folder.mkdir(parents=True, exist_ok=True)
        partial = saved.with_suffix(".partial")
        partial.write_bytes(orjson.dumps({k: list(v) for k, v in event.changes_by_ref.items()}))
        partial.replace(saved)  # whole or absent, even if the server dies mid-write
    return event


def cancel_open_jobs(store: RunStore, run_id: str, reason: str) -> None:
    """Close the run's job records that are not final (`pending`: a play request, or
    `running`) as `canceled` with `reason`: the run ends without its engine finishing them."""
    current = store.get_run(run_id)
    now = datetime.now(UTC)
    for job in current.jobs if current is not None else ():
        if not job.status.is_final:
            store.save_job(
                run_id, replace(job, status=Status.CANCELED, reason=reason, finished_at=now)
            )


def _fail(store: RunStore, run: RunRecord, started_at: datetime, reason: str) -> RunRecord:
    cancel_open_jobs(store, run.run_id, "not run: the run failed before its jobs started")
    finished_at = datetime.now(UTC)
    store.update_run(
        run.run_id,
        status=Status.FAILED,
        started_at=started_at,
        finished_at=finished_at,
        reason=reason,
    )
    jobs = (store.get_run(run.run_id) or run).jobs
    return replace(
        run,
        status=Status.FAILED,
        started_at=started_at,
        finished_at=finished_at,
        reason=reason,
        jobs=jobs,
    )


def _record_canceled(store: RunStore, run: RunRecord) -> None:
    current = store.get_run(run.run_id)
    if current is not None and not current.status.is_final:
        cancel_open_jobs(store, run.run_id, "server shutdown")
        store.update_run(
            run.run_id,
            status=Status.CANCELED,
            finished_at=datetime.now(UTC),
            reason="server shutdown",
        )
