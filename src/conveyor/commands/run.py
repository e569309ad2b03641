"""`conveyor run`: run the pipeline of the current directory, as one readable chain.

    find file → load → event (git) → plan → select --job → start the pristine checkout
    → open store → recover orphans → create run → claim it → execute (live view)
    → summary → exit code

Start-up is most of a short run's time, so the store's libraries are imported in a thread
while git describes the checkout, the pristine checkout of an isolated pipeline runs while
the store opens, and the cycle collector waits until start-up is over.

Exit codes (DESIGN.md): 0 success (also when workflow rules exclude the pipeline), 1 the
pipeline failed or was canceled from elsewhere, 2 invalid config or usage (ConfigError /
UsageError, rendered by cli.py), 130 interrupted: SIGINT or SIGTERM stops every job's
process group (a second signal kills them at once), marks the run canceled, then exits.
`--json` prints the run record on stdout and the job lines on stderr. This module wires
the library together; it decides no status and runs no process itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import sys
import warnings
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click
import orjson

from conveyor.commands.options import event_options, parse_vars
from conveyor.model import EventKind, Plan, RunRecord, Status

if TYPE_CHECKING:
    from conveyor.engine.workspace import JobWorkspaces

__all__ = ["run", "run_pipeline"]


def _declared_secrets(plan: Plan) -> list[str]:
    names = dict.fromkeys(plan.pipeline.secrets)
    for planned in plan.jobs:
        names.update(dict.fromkeys(planned.job.secrets))
    return list(names)


def _new_run(plan: Plan) -> RunRecord:
    """The run record to create: pending, with its jobs pending (stored at once)."""
    from conveyor.engine.scheduler import pending_record
    from conveyor.server.triggers import event_to_trigger
    from conveyor.store.paths import new_run_id

    event = plan.event
    return RunRecord(
        run_id=new_run_id(),
        repo=event.repo,
        ref=event.ref,
        sha=event.sha,
        event=event.kind,
        status=Status.PENDING,
        created_at=datetime.now(UTC),
        pipeline_name=plan.pipeline.name,
        trigger=event_to_trigger(event),
        jobs=tuple(pending_record(planned) for planned in plan.jobs),
    )


@contextlib.contextmanager
def _pidfd_child_watcher() -> Iterator[None]:
    """On Python 3.11, asyncio's default child watcher starts a thread per process (one per
    step), and each start waits for that thread to get the GIL: milliseconds per job on a
    busy machine. A pidfd watcher (Linux ≥ 5.3; Python ≥ 3.12's default) polls a file
    descriptor on the loop instead. The previous watcher is restored afterwards."""
    if sys.version_info >= (3, 12) or not hasattr(os, "pidfd_open"):
        yield
        return
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:  # the kernel or a seccomp filter refuses pidfds: keep the default
        yield
        return
    previous = asyncio.get_child_watcher()
    watcher = asyncio.PidfdChildWatcher()
    watcher.attach_loop(asyncio.get_running_loop())
    asyncio.set_child_watcher(watcher)
    try:
        yield
    finally:
        asyncio.set_child_watcher(previous)
        with warnings.catch_warnings():  # processes still running get no handler: exiting
            warnings.simplefilter("ignore", RuntimeWarning)
            watcher.close()


@contextlib.asynccontextmanager
async def _checkout_early(workspaces: JobWorkspaces) -> AsyncIterator[None]:
    """Start the run's pristine checkout (a git process, isolated pipelines only) before the
    store is opened, which blocks the loop for a while: both proceed at once. On the way
    out, wait for it and clean up (execute_run closes the workspaces too; twice is fine)."""
    checkout = asyncio.ensure_future(workspaces.prepare())
    await asyncio.sleep(0)  # runs prepare() up to the start of its git process
    try:
        yield
    finally:
        with contextlib.suppress(Exception):  # a failed checkout fails the jobs instead
            await checkout
        await workspaces.close()


def _settle_start_up_memory() -> None:
    """After the imports and the store are set up: move what exists to the permanent
    generation and turn the cycle collector back on. Collecting during the imports costs
    about a fifth of start-up and frees nothing."""
    gc.freeze()
    gc.enable()


class _Interrupts:
    """SIGINT/SIGTERM while a run executes: the first sets `cancel` (an orderly stop of
    every group), the second kills every group at once."""

    def __init__(self, cancel: asyncio.Event) -> None:
        self.cancel = cancel
        self.count = 0

    def __call__(self) -> None:
        from conveyor.engine.runner import LIVE_GROUPS

        self.count += 1
        if self.count > 1:
            LIVE_GROUPS.kill_all()
        self.cancel.set()

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self)

    def remove(self, loop: asyncio.AbstractEventLoop) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def relative_path(path: Path) -> Path:
    """`path` relative to the working directory when it lies below it."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


async def run_pipeline(
    directory: Path,
    *,
    file: Path | None,
    event_kind: EventKind,
    ref: str | None,
    sha: str | None,
    jobs: Sequence[str],
    variables: Mapping[str, str],
    concurrency: int | None,
    as_json: bool,
    env: Mapping[str, str],
) -> int:
    """The whole `conveyor run`; returns the exit code."""
    from conveyor.commands.validate import render_warning
    from conveyor.config import find_pipeline_file, load_pipeline
    from conveyor.engine.masking import secret_values
    from conveyor.engine.recovery import process_start_ticks, recover_orphans
    from conveyor.engine.runner import LIVE_GROUPS
    from conveyor.engine.scheduler import execute_run
    from conveyor.engine.selection import select_jobs
    from conveyor.engine.workspace import JobWorkspaces
    from conveyor.gitinfo import event_from_checkout
    from conveyor.plan import plan as plan_pipeline
    from conveyor.records import run_to_dict
    from conveyor.store import open_store
    from conveyor.store.logfiles import RunLogs
    from conveyor.store.paths import home_dir, run_dir
    from conveyor.terminal import open_view, render_summary

    out = sys.stderr if as_json else sys.stdout
    home = home_dir(directory, env)
    # Relative to the working directory, so messages say `.conveyor.yml:3:5` as validate does.
    pipeline_file = file if file is not None else relative_path(find_pipeline_file(directory))
    pipeline = load_pipeline(pipeline_file)
    for warning in pipeline.warnings:
        click.echo(render_warning(warning), err=True)
    event = event_from_checkout(
        directory, kind=event_kind, ref=ref, sha=sha, variables=dict(variables)
    )
    from conveyor.gitinfo import add_compare_changes  # rules:changes:compare_to diffs

    event = add_compare_changes(directory, pipeline, event)
    plan = plan_pipeline(pipeline, event)
    if plan.workflow_excluded is not None:
        reason = plan.workflow_excluded
        click.echo(f"no pipeline: the workflow rules excluded it ({reason})", err=as_json)
        return 0
    plan, played = select_jobs(plan, jobs)
    secrets = secret_values(_declared_secrets(plan), env)
    for name in _declared_secrets(plan):
        if name not in secrets:
            click.echo(f"warning: secret {name} is not set in conveyor's environment", err=True)

    new_run = _new_run(plan)
    folder = run_dir(home, new_run.run_id)
    workspaces = JobWorkspaces(
        directory,
        isolate=pipeline.isolate_jobs,
        sha=plan.event.sha,
        root=folder / "work",
        home=home,
    )
    async with _checkout_early(workspaces):
        store = open_store(home)
        _settle_start_up_memory()
        try:
            for run_id in recover_orphans(store, now=datetime.now(UTC)):
                click.echo(f"recovered run {run_id}: its conveyor process had died", err=True)
            run = store.create_run(new_run)
            pid = os.getpid()
            store.claim_run(
                run.run_id, owner_pid=pid, owner_started_ticks=process_start_ticks(pid) or 0
            )
            folder.mkdir(parents=True, exist_ok=True)
            logs = RunLogs(folder)
            cancel = asyncio.Event()
            interrupts = _Interrupts(cancel)
            loop = asyncio.get_running_loop()
            interrupts.install(loop)
            is_live = out.isatty() and not as_json
            try:
                with open_view(out, [p.name for p in plan.jobs], is_live=is_live) as view:
                    record = await execute_run(
                        plan,
                        run=run,
                        store=store,
                        logs=logs,
                        workspace=directory,
                        run_dir=folder,
                        concurrency=concurrency or pipeline.concurrency or (os.cpu_count() or 2),
                        secrets=secrets,
                        base_env=env,
                        play=played,
                        cancel=cancel,
                        observer=view,
                        home=home,
                        workspaces=workspaces,
                    )
            finally:
                interrupts.remove(loop)
                LIVE_GROUPS.kill_all()  # nothing outlives conveyor, whatever happened above
                logs.close()
            render_summary(record, out, is_tty=is_live)
            if as_json:
                sys.stdout.buffer.write(
                    orjson.dumps(run_to_dict(record), option=orjson.OPT_INDENT_2)
                )
                sys.stdout.buffer.write(b"\n")
                sys.stdout.flush()
        finally:
            store.close()
    if interrupts.count:
        return 130
    return 0 if record.status is Status.SUCCESS else 1


@click.command()
@event_options
@click.option(
    "--job",
    "jobs",
    multiple=True,
    metavar="NAME",
    help="Run only this job and what it needs (repeatable); plays manual jobs.",
)
@click.option("--concurrency", type=click.IntRange(min=1), help="Jobs at once.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the run record as JSON on stdout (job lines go to stderr).",
)
def run(
    file: Path | None,
    event: str,
    ref: str | None,
    sha: str | None,
    jobs: tuple[str, ...],
    variables: tuple[str, ...],
    concurrency: int | None,
    as_json: bool,
) -> None:
    """Run the pipeline in the current directory."""
    gc.disable()  # until start-up is over (`_settle_start_up_memory`): imports make no cycles

    async def run_with_pidfds() -> int:
        with _pidfd_child_watcher():
            return await run_pipeline(
                Path.cwd(),
                file=file,
                event_kind=EventKind(event),
                ref=ref,
                sha=sha,
                jobs=jobs,
                variables=parse_vars(variables),
                concurrency=concurrency,
                as_json=as_json,
                env=os.environ,
            )

    try:
        code = asyncio.run(run_with_pidfds())
    finally:
        gc.enable()
    sys.exit(code)  # SystemExit passes through click's non-standalone main unchanged
