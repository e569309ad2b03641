"""What `conveyor run` and `conveyor play` share once they know which jobs to run: secrets
read from conveyor's environment, dead runs recovered, the run claimed by this process, and
the execution in the terminal.

    secrets = collect_secrets(plan, os.environ)     # warns about declared secrets not set
    recover_dead_runs(store)                         # runs whose conveyor process died
    claim_run(store, run_id)                         # this pid owns it (crash recovery)
    code = await execute_in_terminal(plan, run=..., ...)   # view, summary, --json, 0/1/130

`execute_in_terminal` runs the engine (`engine.scheduler.execute_run`) with a live table on a
TTY or `[job] line` output otherwise, SIGINT/SIGTERM handling (the first signal stops every
job's process group in order and cancels the run, a second kills the groups at once), the
summary, and the run record as JSON on stdout with `--json` (job lines then go to stderr).
Exit codes: 0 success, 1 failed or canceled from elsewhere, 130 interrupted. This module
imports only click and the core model at import time (the engine when it is used): both
commands must start fast. It decides no status and parses no pipeline.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from conveyor.model import Plan, RunRecord, Status

if TYPE_CHECKING:
    import asyncio

    from conveyor.engine.resume import Resume
    from conveyor.engine.workspace import JobWorkspaces
    from conveyor.store.base import RunStore

__all__ = [
    "Interrupts",
    "claim_run",
    "collect_secrets",
    "execute_in_terminal",
    "recover_dead_runs",
    "relative_path",
    "settle_start_up_memory",
]


def relative_path(path: Path) -> Path:
    """`path` relative to the working directory when it lies below it."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def settle_start_up_memory() -> None:
    """After the imports and the store are set up: move what exists to the permanent
    generation and turn the cycle collector back on. Collecting during the imports costs
    about a fifth of start-up and frees nothing."""
    gc.freeze()
    gc.enable()


def collect_secrets(plan: Plan, env: Mapping[str, str]) -> dict[str, str]:
    """The values of the secrets the plan's pipeline and jobs declare, read from `env`; a
    warning on stderr for each one that is not set."""
    from conveyor.secrets import secret_values

    names = dict.fromkeys(plan.pipeline.secrets)
    for planned in plan.jobs:
        names.update(dict.fromkeys(planned.job.secrets))
    secrets = secret_values(list(names), env)
    for name in names:
        if name not in secrets:
            click.echo(f"warning: secret {name} is not set in conveyor's environment", err=True)
    return secrets


def recover_dead_runs(store: RunStore) -> None:
    """Close the runs whose conveyor process died (engine.recovery) and say so on stderr."""
    from conveyor.engine.recovery import recover_orphans

    for orphan_id in recover_orphans(store, now=datetime.now(UTC)):
        click.echo(f"recovered run {orphan_id}: its conveyor process had died", err=True)


def claim_run(store: RunStore, run_id: str) -> None:
    """Record this process as the run's owner: if it dies, the next conveyor command closes
    the run (`recover_dead_runs`) and stops its leftover process groups."""
    from conveyor.engine.recovery import process_start_ticks

    pid = os.getpid()
    store.claim_run(run_id, owner_pid=pid, owner_started_ticks=process_start_ticks(pid) or 0)


class Interrupts:
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


async def execute_in_terminal(
    plan: Plan,
    *,
    run: RunRecord,
    store: RunStore,
    home: Path,
    directory: Path,
    workspaces: JobWorkspaces,
    concurrency: int,
    secrets: Mapping[str, str],
    env: Mapping[str, str],
    as_json: bool,
    play: frozenset[str] = frozenset(),
    resume: Resume | None = None,
) -> int:
    """Execute the claimed run `run` (a new one, or a resumed one with `resume`) in the
    terminal and return the exit code (module docstring). Closes `workspaces`, not `store`."""
    import asyncio

    from conveyor.engine.runner import LIVE_GROUPS
    from conveyor.engine.scheduler import execute_run
    from conveyor.records import run_to_dict
    from conveyor.store.logfiles import RunLogs
    from conveyor.store.paths import run_dir
    from conveyor.terminal import open_view, render_summary

    out = sys.stderr if as_json else sys.stdout
    folder = run_dir(home, run.run_id)
    folder.mkdir(parents=True, exist_ok=True)
    logs = RunLogs(folder)
    cancel = asyncio.Event()
    interrupts = Interrupts(cancel)
    loop = asyncio.get_running_loop()
    interrupts.install(loop)
    is_live = out.isatty() and not as_json
    shown = resume.rerun if resume is not None else tuple(p.name for p in plan.jobs)
    try:
        with open_view(out, shown, is_live=is_live) as view:
            record = await execute_run(
                plan,
                run=run,
                store=store,
                logs=logs,
                workspace=directory,
                run_dir=folder,
                concurrency=concurrency,
                secrets=secrets,
                base_env=env,
                play=play,
                resume=resume,
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
        import orjson

        sys.stdout.buffer.write(orjson.dumps(run_to_dict(record), option=orjson.OPT_INDENT_2))
        sys.stdout.buffer.write(b"\n")
        sys.stdout.flush()
    if interrupts.count:
        return 130
    return 0 if record.status is Status.SUCCESS else 1
