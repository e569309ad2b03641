"""`conveyor runs`, `show`, `logs` and `cancel`: look at (and stop) runs in the local store.

Each command opens the store of the current project (`.conveyor/` or CONVEYOR_HOME), first
closes runs whose conveyor process died (engine.recovery), then reads. Rendering is plain
text (no rich: these commands must start fast) or JSON with the contract's field names.
Must not run jobs; `cancel` only raises the run's cancel flag, which the owning process polls.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import click
import orjson

from conveyor.errors import UsageError
from conveyor.model import LogRecord, RunRecord
from conveyor.records import log_to_dict, run_to_dict
from conveyor.store.paths import DB_NAME, home_dir, is_valid_run_id, run_dir
from conveyor.suggest import closest_name

if TYPE_CHECKING:
    from conveyor.store.base import LogReader, RunStore

__all__ = ["cancel", "logs", "runs", "show"]

_WATCH_INTERVAL_S = 0.25


# ---------------------------------------------------------------- opening the store


def _home() -> Path:
    return home_dir(Path.cwd(), os.environ)


def _open_store(*, create: bool) -> RunStore | None:
    """The project's store with dead owners' runs recovered; None if it does not exist
    yet and `create` is False (reading must not leave a `.conveyor/` behind)."""
    from conveyor.engine.recovery import recover_orphans
    from conveyor.store import open_store

    home = _home()
    if not create and not (home / DB_NAME).exists():
        return None
    store = open_store(home)
    for run_id in recover_orphans(store, now=datetime.now(UTC)):
        click.echo(
            f"conveyor: run {run_id} was interrupted (its conveyor process is gone): "
            "marked failed, leftover processes stopped",
            err=True,
        )
    return store


def _require_run(store: RunStore | None, run_id: str) -> tuple[RunStore, RunRecord]:
    run = store.get_run(run_id) if store is not None and is_valid_run_id(run_id) else None
    if store is None or run is None:
        raise UsageError(
            f"run {run_id!r}: no such run in {_home()} (list runs with `conveyor runs`)"
        )
    return store, run


# ---------------------------------------------------------------- text rendering


def _format_time(value: datetime | None) -> str:
    return "-" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _elapsed(started_at: datetime | None, finished_at: datetime | None) -> str:
    if started_at is None:
        return "-"
    if finished_at is None:
        return _format_duration((datetime.now(UTC) - started_at).total_seconds()) + "…"
    return _format_duration((finished_at - started_at).total_seconds())


def render_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Left-aligned columns separated by two spaces; the last column is not padded."""
    table = [list(headers), *(list(row) for row in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    lines = []
    for row in table:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)


def _echo_json(data: object) -> None:
    click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())


# ---------------------------------------------------------------- runs


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print run records as a JSON list.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
def runs(as_json: bool, limit: int) -> None:
    """List past runs, newest first."""
    store = _open_store(create=False)
    found = [] if store is None else store.list_runs(limit=limit)
    if as_json:
        _echo_json([run_to_dict(run) for run in found])
        return
    if not found:
        click.echo("no runs yet (start one with `conveyor run`)")
        return
    rows = [
        (
            run.run_id,
            str(run.number),
            str(run.status),
            run.ref or "-",
            str(run.event),
            _format_time(run.created_at),
            _elapsed(run.started_at, run.finished_at),
        )
        for run in found
    ]
    headers = ("RUN ID", "#", "STATUS", "REF", "EVENT", "CREATED", "DURATION")
    click.echo(render_table(headers, rows))


# ---------------------------------------------------------------- show


@click.command()
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print the run record as JSON.")
def show(run_id: str, as_json: bool) -> None:
    """Show one run: its header and a row per job."""
    _, run = _require_run(_open_store(create=False), run_id)
    if as_json:
        _echo_json(run_to_dict(run))
        return
    status = f"{run.status} ({run.reason})" if run.reason else str(run.status)
    header = [
        f"run #{run.number}  {run.run_id}  {status}",
        f"pipeline  {run.pipeline_name or '-'}",
        f"repo      {run.repo or '-'}",
        f"ref       {run.ref or '-'}  ({run.event})  {run.sha[:12] or '-'}",
        f"created   {_format_time(run.created_at)}",
        f"duration  {_elapsed(run.started_at, run.finished_at)}",
        "",
    ]
    click.echo("\n".join(header))
    if not run.jobs:
        click.echo("no jobs recorded")
        return
    rows = [
        (
            job.name,
            job.stage,
            str(job.status)
            + (" (allowed)" if job.allow_failure and job.status == "failed" else ""),
            str(job.attempt),
            "-" if job.exit_code is None else str(job.exit_code),
            _elapsed(job.started_at, job.finished_at),
            job.reason or "",
        )
        for job in run.jobs
    ]
    headers = ("JOB", "STAGE", "STATUS", "ATTEMPT", "EXIT", "DURATION", "REASON")
    click.echo(render_table(headers, rows))


# ---------------------------------------------------------------- logs


def _job_choices(run: RunRecord, logs: LogReader) -> list[str]:
    names = [job.name for job in run.jobs]
    return names + [name for name in logs.job_names() if name not in names]


def _check_job(job: str, choices: list[str], run_id: str) -> None:
    if job in choices:
        return
    # Matrix jobs are named `test [PY=3.12]`: compare with the base names too.
    bases = {name.split(" [", 1)[0]: name for name in choices}
    base = closest_name(job, bases)
    close = closest_name(job, choices) or (bases[base] if base is not None else None)
    hint = f'did you mean "{close}"?' if close else f"see its jobs: conveyor show {run_id}"
    raise UsageError(f"run {run_id}: no job {job!r} ({hint})")


class _Printer:
    """Writes log records to stdout as `[job] text` (or bare text) or as JSONL."""

    def __init__(self, out: BinaryIO, *, as_json: bool, prefix: bool) -> None:
        self._out = out
        self._as_json = as_json
        self._prefix = prefix

    def write(self, record: LogRecord) -> None:
        if self._as_json:
            line = orjson.dumps(log_to_dict(record), option=orjson.OPT_APPEND_NEWLINE)
        elif self._prefix:
            line = f"[{record.job}] {record.text}\n".encode()
        else:
            line = f"{record.text}\n".encode()
        self._out.write(line)

    def flush(self) -> None:
        self._out.flush()


@click.command()
@click.argument("run_id")
@click.argument("job", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print log records as JSONL.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until the run ends.")
def logs(run_id: str, job: str | None, as_json: bool, follow: bool) -> None:
    """Print the output of a run (`[job] line`) or of one JOB (bare lines)."""
    from conveyor.store.logreader import LogFileReader

    store, run = _require_run(_open_store(create=False), run_id)
    reader = LogFileReader(run_dir(_home(), run_id))
    choices = _job_choices(run, reader)
    # A queued run has no jobs recorded yet: following a job name is then taken on trust.
    if job is not None and (choices or run.status.is_final or not follow):
        _check_job(job, choices, run_id)
    printer = _Printer(sys.stdout.buffer, as_json=as_json, prefix=job is None)
    if follow and not run.status.is_final:
        asyncio.run(_follow(store, run_id, reader, job, printer))
        return
    records = reader.read_run() if job is None else reader.read_job(job)
    for record in records:
        printer.write(record)
    printer.flush()


async def _follow(
    store: RunStore, run_id: str, logs: LogReader, job: str | None, printer: _Printer
) -> None:
    """Tail the job (or every job as it appears) until the run has a final status."""
    from conveyor.engine.recovery import recover_orphans

    run_done = asyncio.Event()

    async def tail(name: str) -> None:
        async for record in logs.follow_job(name, is_done=run_done.is_set):
            printer.write(record)
            printer.flush()

    async with asyncio.TaskGroup() as group:
        followed: set[str] = set()
        while True:
            for name in [job] if job is not None else logs.job_names():
                if name not in followed:
                    followed.add(name)
                    group.create_task(tail(name))
            if run_id in recover_orphans(store, now=datetime.now(UTC)):
                click.echo(f"conveyor: run {run_id} was interrupted: its process died", err=True)
            run = store.get_run(run_id)
            if run is None or run.status.is_final:
                run_done.set()
                break
            await asyncio.sleep(_WATCH_INTERVAL_S)
        if job is None:
            for name in logs.job_names():  # jobs whose first line came at the very end
                if name not in followed:
                    group.create_task(tail(name))


# ---------------------------------------------------------------- cancel


@click.command()
@click.argument("run_id")
@click.option(
    "--wait",
    "wait_s",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds to wait for the run to stop (0: do not wait).",
)
def cancel(run_id: str, wait_s: float) -> None:
    """Cancel a running run: its conveyor process stops every job's processes."""
    from conveyor.engine.recovery import recover_orphans

    store, run = _require_run(_open_store(create=False), run_id)
    label = f"run #{run.number} ({run.run_id})"
    if run.status.is_final:
        reason = f", {run.reason}" if run.reason else ""
        click.echo(f"{label} already ended: {run.status}{reason}; nothing to cancel")
        return
    store.request_cancel(run_id)
    click.echo(f"{label}: cancel requested")
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if run_id in recover_orphans(store, now=datetime.now(UTC)):
            click.echo(f"{label}: its conveyor process died; marked failed (interrupted)")
            return
        current = store.get_run(run_id)
        if current is not None and current.status.is_final:
            reason = f" ({current.reason})" if current.reason else ""
            click.echo(f"{label} ended: {current.status}{reason}")
            return
        time.sleep(_WATCH_INTERVAL_S)
    if wait_s > 0:
        click.echo(
            f"{label} is still {run.status} after {wait_s:g}s; its conveyor process "
            "will stop it at its next check (see `conveyor show " + run_id + "`)",
            err=True,
        )
    sys.stdout.flush()
