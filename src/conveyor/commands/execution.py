"""The terminal side of `conveyor run` and `conveyor play`: the run chain's `Surface` for a
terminal (warnings on stderr, the live view, SIGINT/SIGTERM as cancel) and the end of the
command (summary, the record as JSON, the exit code).

    surface = TerminalSurface(as_json=False)
    record = await execute_request(request, source, start, surface)   # runs.chain
    return finish_in_terminal(record, surface)                        # 0 / 1 / 130

The view is a live table on a TTY or `[job] line` output otherwise; with `--json` the job
lines go to stderr and the run record is printed on stdout. The first signal stops every
job's process group in order and cancels the run, a second kills the groups at once.
Exit codes: 0 success, 1 failed or canceled from elsewhere, 130 interrupted. This module
imports only click and the core model at import time (the engine when it is used): both
commands must start fast. It decides no status and parses no pipeline.
"""

from __future__ import annotations

import contextlib
import gc
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from conveyor.model import Plan, RunRecord, Status

if TYPE_CHECKING:
    import asyncio

    from conveyor.engine.scheduler import RunControls
    from conveyor.runs.chain import Started

__all__ = [
    "Interrupts",
    "TerminalSurface",
    "finish_in_terminal",
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


class TerminalSurface:
    """The run chain's Surface in a terminal (module docstring)."""

    def __init__(self, *, as_json: bool) -> None:
        self.as_json = as_json
        self.out = sys.stderr if as_json else sys.stdout
        self.is_live = self.out.isatty() and not as_json
        self.interrupted = 0

    def say(self, text: str) -> None:
        click.echo(text, err=True)

    def notice(self, text: str) -> None:
        """A line for stdout, unless stdout carries the JSON record."""
        click.echo(text, err=self.as_json)

    @contextlib.asynccontextmanager
    async def open(self, plan: Plan, started: Started) -> AsyncIterator[RunControls]:
        import asyncio

        from conveyor.commands.terminal import open_view
        from conveyor.engine.runner import LIVE_GROUPS
        from conveyor.engine.scheduler import RunControls

        settle_start_up_memory()
        resume = started.resume
        shown = resume.rerun if resume is not None else tuple(p.name for p in plan.jobs)
        interrupts = Interrupts(asyncio.Event())
        loop = asyncio.get_running_loop()
        interrupts.install(loop)
        try:
            with open_view(self.out, shown, is_live=self.is_live) as view:
                yield RunControls(cancel=interrupts.cancel, observer=view)
        finally:
            interrupts.remove(loop)
            LIVE_GROUPS.kill_all()  # nothing outlives conveyor, whatever happened above
            self.interrupted = interrupts.count


def finish_in_terminal(record: RunRecord, surface: TerminalSurface) -> int:
    """The summary, the record as JSON with `--json`, and the exit code."""
    from conveyor.commands.terminal import render_summary
    from conveyor.records import run_to_dict

    render_summary(record, surface.out, is_tty=surface.is_live)
    if surface.as_json:
        import orjson

        sys.stdout.buffer.write(orjson.dumps(run_to_dict(record), option=orjson.OPT_INDENT_2))
        sys.stdout.buffer.write(b"\n")
        sys.stdout.flush()
    if surface.interrupted:
        return 130
    return 0 if record.status is Status.SUCCESS else 1
