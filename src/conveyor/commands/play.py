"""`conveyor play RUN_ID JOB`: play a manual job of a local run inside that run, as GitLab
(and the API's play) does: same run id, the played job and the jobs it held back run, every
other job keeps its record.

    store → recover dead runs → the run and its refusals → the run's event (its trigger,
    described again at its sha) → its pipeline file → plan (its `--job` selection)
    → resume (engine.resume) → claim, reopen → execute in the terminal → exit code

The run is planned again from what `conveyor run` stored in its trigger: the event (ref,
sha, kind, variables), the pipeline file and the `--job` names; changed and listed files
are described again from the checkout at the run's sha. Where the pipeline comes from:

- a pipeline sharing one workspace (native): the project folder as it is now, like
  `conveyor run`. Its jobs run in that folder, so the folder must still be the run's
  commit: when the checkout's HEAD is another commit the play is refused (there is no
  override: the run record names its commit, and a played job must not run other files).
  Files that earlier jobs left in the folder are used as they are (not restored from the
  saved artifacts, unlike the server, whose worktree is fresh).
- isolated jobs (GitLab): the pipeline file of a pristine checkout of the run's sha
  (through `engine.workspace.JobWorkspaces`, which the jobs then run from), so HEAD may have
  moved on; a pipeline file that commit does not hold is read from the folder, as the run
  read it.

Refusals (UsageError, exit 2, one line, the API's 409 reasons): unknown run, unknown job
(did-you-mean), job not manual or already played, run canceled, run still executing in
another process (its owner pid is alive), HEAD moved (shared workspace), or a pipeline that
no longer plans the run's jobs. Two plays at once are serialized by a lock file in
conveyor's home held from the last check to the claim: the second sees the run executing
and is refused. The execution (view, summary, `--json`, exit codes 0/1/130, crash recovery
through the claim) is `commands.execution`, shared with `conveyor run`.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import click

from conveyor.commands.execution import (
    claim_run,
    collect_secrets,
    execute_in_terminal,
    recover_dead_runs,
)
from conveyor.errors import ConfigError, UsageError
from conveyor.model import Event, Pipeline, RunRecord, Status
from conveyor.suggest import closest_name

if TYPE_CHECKING:
    from conveyor.engine.workspace import JobWorkspaces
    from conveyor.store.base import RunStore

__all__ = ["play", "play_job"]

_LOCK_FILE = "play.lock"


def _find_run(store: RunStore, run_id: str, home: Path) -> RunRecord:
    from conveyor.store.paths import is_valid_run_id

    run = store.get_run(run_id) if is_valid_run_id(run_id) else None
    if run is None:
        raise UsageError(_no_such_run(run_id, home))
    return run


def _no_such_run(run_id: str, home: Path) -> str:
    return f"run {run_id!r}: no such run in {home} (list runs with `conveyor runs`)"


def _check_job(run: RunRecord, job: str) -> None:
    """UsageError when the run has no job `job`, with a did-you-mean over its job names."""
    names = [record.name for record in run.jobs]
    if job in names:
        return
    close = closest_name(job, names)
    waiting = [r.name for r in run.jobs if r.status is Status.MANUAL and not r.attempt]
    if close:
        hint = f"did you mean {close!r}?"
    elif waiting:
        hint = "manual jobs waiting to be played: " + ", ".join(repr(name) for name in waiting)
    else:
        hint = "it has no manual job waiting to be played"
    raise UsageError(f"run {run.run_id}: no job {job!r} in this run ({hint})")


def _check_playable(store: RunStore, run: RunRecord, job: str) -> None:
    """Every refusal that needs only the stored run (module docstring)."""
    from conveyor.engine.resume import check_playable

    _check_job(run, job)
    if run.status in (Status.RUNNING, Status.PENDING):
        owner = next((pid for rid, pid, _ in store.orphaned_runs() if rid == run.run_id), None)
        where = f"conveyor process {owner}" if owner else "another conveyor process"
        raise UsageError(
            f"run {run.run_id}: the run is still {run.status} in {where} (play {job!r} once it "
            f"has ended, or stop it with `conveyor cancel {run.run_id}`)"
        )
    check_playable(run, job, is_cancel_requested=store.is_cancel_requested(run.run_id))


@contextlib.contextmanager
def _play_lock(home: Path) -> Iterator[None]:
    """One play at a time between its last check and its claim (released on exit, or by
    the kernel when the process dies)."""
    import fcntl

    with (home / _LOCK_FILE).open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        yield


def _run_event(directory: Path, run: RunRecord, env: Mapping[str, str]) -> Event:
    """The run's event from its trigger (variables that were a secret read from `env`
    again), with the changed and listed files of the checkout described again at the run's
    sha (they are not stored)."""
    from conveyor.git.describe import event_from_checkout
    from conveyor.triggers import event_from_trigger

    stored = event_from_trigger(run.trigger, env)
    stored = replace(stored, kind=run.event, ref=run.ref, sha=run.sha, repo=run.repo)
    described = event_from_checkout(
        directory, kind=stored.kind, ref=stored.ref or None, sha=stored.sha or None
    )
    return replace(stored, changed_files=described.changed_files, files=described.files)


async def _check_head(directory: Path, run: RunRecord) -> None:
    """UsageError when the checkout's HEAD is not the run's commit (shared workspaces)."""
    from conveyor.git.adapter import GitCli
    from conveyor.git.policy import NULL_SHA

    if run.sha in ("", NULL_SHA):
        return  # the run was not made from a git commit: nothing to compare
    head = await GitCli().head_commit(directory)
    if head is not None and head != run.sha:
        short = run.sha[:12]
        raise UsageError(
            f"run {run.run_id}: the project folder is at commit {head[:12]}, not the run's "
            f"{short}; its jobs share this folder, so the played job would run other files "
            f"(check out the run's commit: `git switch --detach {short}`, or start a new run)"
        )


def _path_inside(directory: Path, file: Path) -> Path | None:
    """`file` relative to the project folder `directory`; None when it lies outside."""
    path = file if file.is_absolute() else directory / file
    try:
        return path.resolve().relative_to(directory.resolve())
    except ValueError:
        return None


def _shown_from(copy: Path, pipeline: Pipeline) -> Pipeline:
    prefix = f"{copy}{os.sep}"
    return replace(pipeline, warnings=tuple(w.replace(prefix, "") for w in pipeline.warnings))


async def _load_pipeline(
    directory: Path, pipeline_file: Path, event: Event, workspaces: JobWorkspaces, scratch: Path
) -> Pipeline:
    """The run's pipeline (module docstring: the folder, or the pristine checkout of the
    run's sha for isolated jobs). Problems name files relative to the project folder."""
    from functools import partial

    from conveyor.config import load_pipeline
    from conveyor.git.describe import changes_lookup
    from conveyor.outbound.remote import HttpRemoteFetcher

    changes_since = changes_lookup(directory, event.sha)
    load = partial(
        load_pipeline, event=event, changes_since=changes_since, fetch=HttpRemoteFetcher()
    )
    inside = _path_inside(directory, pipeline_file)
    if not workspaces.isolate or inside is None:  # outside the project: read as it is now
        return load(pipeline_file)
    async with workspaces.open(scratch) as copy:
        committed = copy / inside
        if not committed.is_file():  # not in that commit: the run read the folder's
            return load(pipeline_file)
        prefix = f"{copy}{os.sep}"
        try:
            return _shown_from(copy, load(committed))
        except ConfigError as exc:
            problems = [replace(p, file=p.file.replace(prefix, "")) for p in exc.problems]
            raise ConfigError(problems) from None
        except UsageError as exc:
            raise UsageError(str(exc).replace(prefix, "")) from None


def _selection(trigger: Mapping[str, object]) -> tuple[tuple[str, ...], frozenset[str]]:
    """The `--job` names of the run (`conveyor run`) and the jobs the server was asked to
    play when it started (`play`, server runs)."""
    selected, played = trigger.get("selected_jobs"), trigger.get("play")
    return (
        tuple(str(name) for name in selected) if isinstance(selected, list) else (),
        frozenset(str(name) for name in played) if isinstance(played, list) else frozenset(),
    )


async def play_job(
    directory: Path,
    run_id: str,
    job: str,
    *,
    concurrency: int | None,
    as_json: bool,
    env: Mapping[str, str],
) -> int:
    """The whole `conveyor play`; returns the exit code."""
    from conveyor.store import open_store
    from conveyor.store.paths import DB_NAME, home_dir

    home = home_dir(directory, env)
    if not (home / DB_NAME).is_file():  # reading must not leave a `.conveyor/` behind
        raise UsageError(_no_such_run(run_id, home))
    store = open_store(home)
    try:
        recover_dead_runs(store)
        run = _find_run(store, run_id, home)  # read after recovery: as it left the run
        _check_playable(store, run, job)
        return await _play_checked(directory, run, job, store=store, home=home,
                                   concurrency=concurrency, as_json=as_json, env=env)  # fmt: skip
    finally:
        store.close()


async def _play_checked(
    directory: Path,
    run: RunRecord,
    job: str,
    *,
    store: RunStore,
    home: Path,
    concurrency: int | None,
    as_json: bool,
    env: Mapping[str, str],
) -> int:
    """event → pipeline → plan → resume → claim → execute, for a play that passed the
    checks on the stored run (they are made again under the lock before the claim)."""
    from conveyor.commands.validate import render_warning
    from conveyor.config import find_pipeline_file, is_gitlab_file
    from conveyor.engine.resume import plan_resume
    from conveyor.engine.selection import select_jobs
    from conveyor.engine.workspace import JobWorkspaces
    from conveyor.git.describe import add_compare_changes
    from conveyor.plan import compare_to_refs
    from conveyor.plan import plan as plan_pipeline
    from conveyor.store.paths import run_dir

    stored_file = run.trigger.get("pipeline_file")
    pipeline_file = Path(stored_file) if isinstance(stored_file, str) else None
    pipeline_file = pipeline_file or find_pipeline_file(directory)
    event = _run_event(directory, run, env)
    folder = run_dir(home, run.run_id)
    workspaces = JobWorkspaces(
        directory,
        isolate=is_gitlab_file(pipeline_file),  # the files load_pipeline reads as GitLab's
        sha=run.sha,
        root=folder / "work",
        home=home,
    )
    try:
        if not workspaces.isolate:
            await _check_head(directory, run)
        scratch = folder / "work" / "play-pipeline"
        pipeline = await _load_pipeline(directory, pipeline_file, event, workspaces, scratch)
        for warning in pipeline.warnings:
            click.echo(render_warning(warning), err=True)
        if workspaces.isolate != pipeline.isolate_jobs:
            await workspaces.close()
            workspaces = JobWorkspaces(
                directory,
                isolate=pipeline.isolate_jobs,
                sha=run.sha,
                root=folder / "work",
                home=home,
            )
            if not pipeline.isolate_jobs:
                await _check_head(directory, run)
        event = add_compare_changes(directory, event, compare_to_refs(pipeline, event))
        plan = plan_pipeline(pipeline, event)
        if plan.workflow_excluded is not None:
            raise UsageError(
                f"run {run.run_id}: the pipeline no longer plans this run (its workflow rules "
                f"exclude it: {plan.workflow_excluded}); start a new run"
            )
        selected, played = _selection(run.trigger)
        plan, selected_played = select_jobs(plan, selected)
        secrets = collect_secrets(plan, env)
        with _play_lock(home):
            current = store.get_run(run.run_id) or run
            _check_playable(store, current, job)
            resume = plan_resume(plan, current.jobs, {job}, played=played | selected_played)
            claim_run(store, run.run_id)  # first: a running run always has a live owner
            store.reopen_run(run.run_id, status=Status.RUNNING)
        then = [name for name in resume.rerun if name != job]
        click.echo(
            f"run {run.run_id}: playing {job}" + (f", then {', '.join(then)}" if then else ""),
            err=True,
        )
        return await execute_in_terminal(
            plan,
            run=current,
            store=store,
            home=home,
            directory=directory,
            workspaces=workspaces,
            concurrency=concurrency or pipeline.concurrency or (os.cpu_count() or 2),
            secrets=secrets,
            env=env,
            as_json=as_json,
            play=played | selected_played,
            resume=resume,
        )
    finally:
        await workspaces.close()


@click.command()
@click.argument("run_id")
@click.argument("job")
@click.option("--concurrency", type=click.IntRange(min=1), help="Jobs at once.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the run record as JSON on stdout (job lines go to stderr).",
)
def play(run_id: str, job: str, concurrency: int | None, as_json: bool) -> None:
    """Play manual job JOB of run RUN_ID inside that run (same run id).

    Run it in the project folder of the run. The played job and the jobs it held back run
    (with `conveyor run`'s view, summary and exit codes); every other job keeps its record.
    A pipeline whose jobs share the project folder is played only while the folder's HEAD
    is still the run's commit; GitLab pipelines run from a clean checkout of that commit.
    """
    import asyncio

    from conveyor.engine.runner import pidfd_child_watcher

    directory = Path.cwd()

    async def play_with_pidfds() -> int:
        with pidfd_child_watcher():
            return await play_job(
                directory, run_id, job, concurrency=concurrency, as_json=as_json, env=os.environ
            )

    sys.exit(asyncio.run(play_with_pidfds()))  # SystemExit passes through click's main
