"""`conveyor run`: run the pipeline of the current directory, as one readable chain.

    start describing the checkout (git) → find file → event → start the pristine checkout
    → load → plan → select --job → open store → recover orphans → create run → claim it
    → execute (live view) → summary → exit code

Start-up is most of a short run's time, and imports keep Python's one thread busy, so git
works meanwhile on another core: the commands that describe the checkout start before
asyncio and the engine are imported, and the pristine checkout of a GitLab file (whose jobs
are isolated) starts before the rest is imported, the file parsed and the store opened. If
the run is not created after all (invalid file, unknown --job, workflow rules), that
checkout and the folders made for it are removed. The cycle collector waits until start-up
is over.

Exit codes (DESIGN.md): 0 success (also when workflow rules exclude the pipeline), 1 the
pipeline failed or was canceled from elsewhere, 2 invalid config or usage (ConfigError /
UsageError, rendered by cli.py), 130 interrupted: SIGINT or SIGTERM stops every job's
process group (a second signal kills them at once), marks the run canceled, then exits.
`--json` prints the run record on stdout and the job lines on stderr. The run's trigger
keeps its event, pipeline file and `--job` names, from which `conveyor play` plans it again.
The execution in the terminal (view, signals, summary, `--json`) is `commands.execution`,
shared with `conveyor play`. This module wires the library together; it decides no status
and runs no process itself.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from conveyor.commands.execution import (
    claim_run,
    collect_secrets,
    execute_in_terminal,
    recover_dead_runs,
    relative_path,
    settle_start_up_memory,
)
from conveyor.commands.options import event_options, parse_vars
from conveyor.model import Event, EventKind, Plan, RunRecord, Status

if TYPE_CHECKING:
    from conveyor.engine.workspace import JobWorkspaces
    from conveyor.git.describe import CheckoutQuery

__all__ = ["run", "run_pipeline"]


def _new_run(
    plan: Plan,
    run_id: str,
    *,
    pipeline_file: Path,
    jobs: Sequence[str],
    secrets: Mapping[str, str],
) -> RunRecord:
    """The run record to create: pending, with its jobs pending (stored at once). Its
    trigger keeps the event (secret values masked), the pipeline file and the `--job`
    names: `conveyor play` plans the run again from them."""
    from conveyor.engine.scheduler import pending_record
    from conveyor.triggers import event_to_trigger, hide_secret_variables

    event = plan.event
    return RunRecord(
        run_id=run_id,
        repo=event.repo,
        ref=event.ref,
        sha=event.sha,
        event=event.kind,
        status=Status.PENDING,
        created_at=datetime.now(UTC),
        pipeline_name=plan.pipeline.name,
        trigger={
            **hide_secret_variables(event_to_trigger(event), secrets),
            "pipeline_file": str(pipeline_file),
            "selected_jobs": list(jobs),
        },
        jobs=tuple(pending_record(planned) for planned in plan.jobs),
    )


@contextlib.asynccontextmanager
async def _checkout_early(workspaces: JobWorkspaces) -> AsyncIterator[None]:
    """Start the run's pristine checkout (a git process, isolated pipelines only) before the
    engine is imported, the file parsed and the store opened, which block the loop for a
    while: git works meanwhile. On the way out, wait for it and clean up (execute_run
    closes the workspaces too; twice is fine)."""
    import asyncio

    checkout = asyncio.ensure_future(workspaces.prepare())
    await asyncio.sleep(0)  # runs prepare() up to the start of its git process
    try:
        yield
    finally:
        with contextlib.suppress(Exception):  # a failed checkout fails the jobs instead
            await checkout
        await workspaces.close()


def _remove_empty_folders(folders: Sequence[Path]) -> None:
    """Remove `folders` (deepest first) where empty: those made for a run never created."""
    for folder in reversed(folders):
        with contextlib.suppress(OSError):
            folder.rmdir()


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
    checkout: CheckoutQuery | None = None,
) -> int:
    """The whole `conveyor run`; returns the exit code. `checkout`: the git commands that
    describe `directory` for this event, when the caller has started them already."""
    from conveyor.config import find_pipeline_file, is_gitlab_file
    from conveyor.engine.workspace import JobWorkspaces
    from conveyor.git.describe import start_checkout_query
    from conveyor.store.paths import home_dir, new_run_id, run_dir

    query = checkout or start_checkout_query(directory, kind=event_kind, ref=ref, sha=sha)
    try:
        home = home_dir(directory, env)
        # Relative to the working directory, so messages say `.conveyor.yml:3:5` as validate does.
        pipeline_file = file if file is not None else relative_path(find_pipeline_file(directory))
        event = query.event(variables)
    finally:
        query.close()
    run_id = new_run_id()
    folder = run_dir(home, run_id)
    made_folders = [path for path in (*reversed(folder.parents), folder) if not path.exists()]
    workspaces = JobWorkspaces(
        directory,
        isolate=is_gitlab_file(pipeline_file),  # the files load_pipeline reads as GitLab's
        sha=event.sha,
        root=folder / "work",
        home=home,
    )
    is_created = False

    def created() -> None:
        nonlocal is_created
        is_created = True

    try:
        async with _checkout_early(workspaces):
            return await _run_described(
                directory,
                pipeline_file,
                event,
                run_id=run_id,
                home=home,
                workspaces=workspaces,
                on_created=created,
                jobs=jobs,
                concurrency=concurrency,
                as_json=as_json,
                env=env,
            )
    finally:
        if not is_created:
            _remove_empty_folders(made_folders)


async def _run_described(
    directory: Path,
    pipeline_file: Path,
    event: Event,
    *,
    run_id: str,
    home: Path,
    workspaces: JobWorkspaces,
    on_created: Callable[[], None],
    jobs: Sequence[str],
    concurrency: int | None,
    as_json: bool,
    env: Mapping[str, str],
) -> int:
    """load → plan → select → store → execute → summary, once the checkout is described
    and its pristine copy started (`workspaces`, closed by the caller)."""
    from conveyor.commands.validate import render_warning
    from conveyor.config import load_pipeline
    from conveyor.engine.selection import select_jobs
    from conveyor.engine.workspace import JobWorkspaces
    from conveyor.git.describe import add_compare_changes, changes_lookup  # compare_to diffs
    from conveyor.outbound.remote import HttpRemoteFetcher
    from conveyor.plan import compare_to_refs
    from conveyor.plan import plan as plan_pipeline
    from conveyor.store import open_store
    from conveyor.store.paths import run_dir

    # The event decides include:rules.
    changes_since = changes_lookup(directory, event.sha)
    pipeline = load_pipeline(
        pipeline_file, event=event, changes_since=changes_since, fetch=HttpRemoteFetcher()
    )
    for warning in pipeline.warnings:
        click.echo(render_warning(warning), err=True)
    event = add_compare_changes(directory, event, compare_to_refs(pipeline, event))
    plan = plan_pipeline(pipeline, event)
    if plan.workflow_excluded is not None:
        reason = plan.workflow_excluded
        click.echo(f"no pipeline: the workflow rules excluded it ({reason})", err=as_json)
        return 0
    plan, played = select_jobs(plan, jobs)
    secrets = collect_secrets(plan, env)
    new_run = _new_run(plan, run_id, pipeline_file=pipeline_file, jobs=jobs, secrets=secrets)
    if (workspaces.isolate, workspaces.sha) != (pipeline.isolate_jobs, plan.event.sha):
        await workspaces.prepare()  # started on another guess: finish, drop, start again
        await workspaces.close()
        workspaces = JobWorkspaces(
            directory,
            isolate=pipeline.isolate_jobs,
            sha=plan.event.sha,
            root=run_dir(home, run_id) / "work",
            home=home,
        )
    store = open_store(home)
    settle_start_up_memory()
    try:
        recover_dead_runs(store)
        run = store.create_run(new_run)
        on_created()
        claim_run(store, run.run_id)
        return await execute_in_terminal(
            plan,
            run=run,
            store=store,
            home=home,
            directory=directory,
            workspaces=workspaces,
            concurrency=concurrency or pipeline.concurrency or (os.cpu_count() or 2),
            secrets=secrets,
            env=env,
            as_json=as_json,
            play=played,
        )
    finally:
        store.close()


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
    values = parse_vars(variables)
    directory, kind = Path.cwd(), EventKind(event)
    gc.disable()  # until start-up is over (`settle_start_up_memory`): imports make no cycles
    from conveyor.git.describe import start_checkout_query

    # git describes the checkout on another core while asyncio and the engine are imported.
    checkout = start_checkout_query(directory, kind=kind, ref=ref, sha=sha)
    try:
        import asyncio

        from conveyor.engine.runner import pidfd_child_watcher

        async def run_with_pidfds() -> int:
            with pidfd_child_watcher():
                return await run_pipeline(
                    directory,
                    file=file,
                    event_kind=kind,
                    ref=ref,
                    sha=sha,
                    jobs=jobs,
                    variables=values,
                    concurrency=concurrency,
                    as_json=as_json,
                    env=os.environ,
                    checkout=checkout,
                )

        code = asyncio.run(run_with_pidfds())
    finally:
        checkout.close()
        gc.enable()
    sys.exit(code)  # SystemExit passes through click's non-standalone main unchanged
