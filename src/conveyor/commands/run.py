"""`conveyor run`: run the pipeline of the current directory, as one readable chain.

    find file → load → event (git) → plan → select --job → open store → recover orphans
    → create run → claim it → execute (live view) → summary → exit code

Exit codes (DESIGN.md): 0 success (also when workflow rules exclude the pipeline), 1 the
pipeline failed or was canceled from elsewhere, 2 invalid config or usage (ConfigError /
UsageError, rendered by cli.py), 130 interrupted: SIGINT or SIGTERM stops every job's
process group (a second signal kills them at once), marks the run canceled, then exits.
`--json` prints the run record on stdout and the job lines on stderr. This module wires
the library together; it decides no status and runs no process itself.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import click
import orjson

from conveyor.errors import UsageError
from conveyor.model import EventKind, Plan, RunRecord, Status

__all__ = ["parse_vars", "run", "run_pipeline"]


def parse_vars(pairs: Sequence[str]) -> dict[str, str]:
    """`--var K=V` pairs as a mapping; a pair without `=` or with an empty key is an error."""
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--var {pair!r}: expected KEY=VALUE (e.g. --var DEPLOY=1)")
        values[key.strip()] = value
    return values


def _declared_secrets(plan: Plan) -> list[str]:
    names = dict.fromkeys(plan.pipeline.secrets)
    for planned in plan.jobs:
        names.update(dict.fromkeys(planned.job.secrets))
    return list(names)


def _new_run(plan: Plan) -> RunRecord:
    """The run record to create: pending, with its jobs pending (stored at once)."""
    from conveyor.engine.scheduler import pending_record
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
        trigger={"kind": str(event.kind), "ref": event.ref, "sha": event.sha, "repo": event.repo},
        jobs=tuple(pending_record(planned) for planned in plan.jobs),
    )


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
    from conveyor.config import find_pipeline_file, load_pipeline
    from conveyor.engine.masking import secret_values
    from conveyor.engine.recovery import process_start_ticks, recover_orphans
    from conveyor.engine.runner import LIVE_GROUPS
    from conveyor.engine.scheduler import execute_run
    from conveyor.engine.selection import select_jobs
    from conveyor.gitinfo import event_from_checkout
    from conveyor.plan import plan as plan_pipeline
    from conveyor.records import run_to_dict
    from conveyor.store import open_store
    from conveyor.store.logfiles import RunLogs
    from conveyor.store.paths import home_dir, run_dir
    from conveyor.terminal import open_view, render_summary

    out = sys.stderr if as_json else sys.stdout
    pipeline_file = file if file is not None else find_pipeline_file(directory)
    pipeline = load_pipeline(pipeline_file)
    for warning in pipeline.warnings:
        click.echo(f"warning: {warning}", err=True)
    event = event_from_checkout(
        directory, kind=event_kind, ref=ref, sha=sha, variables=dict(variables)
    )
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

    home = home_dir(directory, env)
    store = open_store(home)
    _settle_start_up_memory()
    try:
        for run_id in recover_orphans(store, now=datetime.now(UTC)):
            click.echo(f"recovered run {run_id}: its conveyor process had died", err=True)
        run = store.create_run(_new_run(plan))
        pid = os.getpid()
        store.claim_run(
            run.run_id, owner_pid=pid, owner_started_ticks=process_start_ticks(pid) or 0
        )
        folder = run_dir(home, run.run_id)
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
                )
        finally:
            interrupts.remove(loop)
            LIVE_GROUPS.kill_all()  # nothing outlives conveyor, whatever happened above
            logs.close()
        render_summary(record, out, is_tty=is_live)
        if as_json:
            sys.stdout.buffer.write(orjson.dumps(run_to_dict(record), option=orjson.OPT_INDENT_2))
            sys.stdout.buffer.write(b"\n")
            sys.stdout.flush()
    finally:
        store.close()
    if interrupts.count:
        return 130
    return 0 if record.status is Status.SUCCESS else 1


@click.command()
@click.option(
    "-f",
    "--file",
    "file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Pipeline file (default: .conveyor.yml, then .gitlab-ci.yml).",
)
@click.option(
    "--event",
    "event",
    type=click.Choice([str(k) for k in EventKind]),
    default="push",
    show_default=True,
    help="The event to run the pipeline for.",
)
@click.option("--ref", help="Branch or tag name (default: the current git branch).")
@click.option("--sha", help="Commit (default: git rev-parse HEAD).")
@click.option(
    "--job",
    "jobs",
    multiple=True,
    metavar="NAME",
    help="Run only this job and what it needs (repeatable); plays manual jobs.",
)
@click.option(
    "--var",
    "variables",
    multiple=True,
    metavar="K=V",
    help="A variable for every job (repeatable); wins over the file's.",
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
    try:
        code = asyncio.run(
            run_pipeline(
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
        )
    finally:
        gc.enable()
    sys.exit(code)  # SystemExit passes through click's non-standalone main unchanged
