"""What `conveyor run` shows while a run executes, and the summary after it.

Two RunObservers: `LiveView` (a TTY: a rich table with a row per job — status, attempt,
duration, last output line — redrawn at most 8 times a second, never per line) and
`PlainView` (not a TTY, or `--json`: `[job] line` lines written through one large buffer,
flushed when a job ends). Both receive lines that are already masked.
`render_summary` prints the final table (rich on a TTY, plain aligned text otherwise).
rich is imported only on the TTY path: it costs start-up time that pipes and CI logs do
not need. This module renders only: it never decides a status or touches the store.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import IO, TYPE_CHECKING, TextIO

from conveyor.model import JobRecord, LogRecord, RunRecord, Status

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

__all__ = ["LiveView", "PlainView", "open_view", "render_summary"]

_STYLES = {
    Status.PENDING: "dim",
    Status.RUNNING: "bold cyan",
    Status.SUCCESS: "green",
    Status.FAILED: "bold red",
    Status.CANCELED: "yellow",
    Status.SKIPPED: "dim",
    Status.MANUAL: "magenta",
}
_BUFFER_BYTES = 1 << 20
_LAST_LINE_CHARS = 120


def _status_label(record: JobRecord) -> tuple[str, str]:
    """(label, rich style) of a job's status."""
    if record.status is Status.FAILED and record.allow_failure:
        return "failed (allowed)", "yellow"
    return str(record.status), _STYLES[record.status]


def _status_text(record: JobRecord) -> Text:
    from rich.text import Text

    label, style = _status_label(record)
    return Text(label, style=style)


def _duration(record: JobRecord) -> str:
    if record.duration_s is not None:
        return f"{record.duration_s:.2f}s"
    return ""


class PlainView:
    """`[job] line` output for pipes, files and CI logs."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        # One large buffer over the same file descriptor: a million lines, few syscalls.
        try:
            fd = stream.fileno()
        except (OSError, io.UnsupportedOperation):
            self._out: IO[str] = stream
        else:
            stream.flush()
            self._out = open(  # noqa: SIM115 (closed in close())
                fd, "w", buffering=_BUFFER_BYTES, closefd=False, encoding="utf-8", errors="replace"
            )

    def job_updated(self, record: JobRecord) -> None:
        # Jobs that never ran explain themselves in a system line; the summary has reasons.
        name = record.name
        if record.status is Status.RUNNING:
            self._out.write(f"[{name}] running (attempt {record.attempt})\n")
        elif record.status.is_final and record.attempt:
            self._out.write(f"[{name}] {_status_label(record)[0]} in {_duration(record)}\n")
        if record.status.is_final:
            self._out.flush()

    def lines_written(self, job: str, records: Sequence[LogRecord]) -> None:
        prefix = f"[{job}] "
        self._out.write("".join([f"{prefix}{r.text}\n" for r in records]))

    def close(self) -> None:
        self._out.flush()
        if self._out is not self._stream:
            self._out.close()

    def __enter__(self) -> PlainView:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class LiveView:
    """The live table on a terminal."""

    def __init__(self, console: Console, jobs: Iterable[str]) -> None:
        self._console = console
        self._records: dict[str, JobRecord] = {}
        self._last: dict[str, str] = dict.fromkeys(jobs, "")
        self._order = list(self._last)
        from rich.live import Live

        self._live = Live(
            get_renderable=self._table,
            console=console,
            refresh_per_second=8,
            transient=True,
        )

    def job_updated(self, record: JobRecord) -> None:
        self._records[record.name] = record
        if record.name not in self._last:
            self._order.append(record.name)
            self._last[record.name] = ""

    def lines_written(self, job: str, records: Sequence[LogRecord]) -> None:
        if records:
            self._last[job] = records[-1].text[:_LAST_LINE_CHARS]

    def _table(self) -> Table:
        from rich.table import Table
        from rich.text import Text

        table = Table(expand=True, box=None, pad_edge=False)
        widest = max((len(name) for name in self._order), default=3)
        table.add_column("job", no_wrap=True, min_width=min(widest, 40))
        table.add_column("status", no_wrap=True, min_width=16)
        table.add_column("attempt", no_wrap=True)
        table.add_column("time", no_wrap=True, min_width=7)
        table.add_column("last line", no_wrap=True, overflow="ellipsis", ratio=1)
        now = time.time()
        for name in list(self._order):
            record = self._records.get(name)
            if record is None:
                continue
            elapsed = _duration(record)
            if record.status is Status.RUNNING and record.started_at is not None:
                elapsed = f"{now - record.started_at.timestamp():.1f}s"
            table.add_row(
                name,
                _status_text(record),
                str(record.attempt or ""),
                elapsed,
                Text(self._last.get(name, ""), style="dim"),
            )
        return table

    def __enter__(self) -> LiveView:
        self._live.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._live.stop()


def open_view(stream: TextIO, jobs: Iterable[str], *, is_live: bool) -> LiveView | PlainView:
    """A LiveView on `stream` when `is_live` (a TTY), else a PlainView."""
    if is_live:
        from rich.console import Console

        return LiveView(Console(file=stream), jobs)
    return PlainView(stream)


_SUMMARY_COLUMNS = ("job", "stage", "status", "attempt", "time", "reason")


def _summary_rows(run: RunRecord) -> list[tuple[str, ...]]:
    return [
        (
            job.name,
            job.stage,
            _status_label(job)[0],
            str(job.attempt or ""),
            _duration(job),
            job.reason or "",
        )
        for job in run.jobs
    ]


def render_summary(run: RunRecord, stream: TextIO, *, is_tty: bool) -> None:
    """The final table: a row per job, then the run's outcome."""
    took = f" in {run.duration_s:.1f}s" if run.duration_s is not None else ""
    outcome = f"pipeline {run.status}{took}"
    if not is_tty:
        rows = [_SUMMARY_COLUMNS, *_summary_rows(run)]
        widths = [max(len(row[i]) for row in rows) for i in range(len(_SUMMARY_COLUMNS) - 1)]
        lines = [f"run {run.run_id}"]
        for row in rows:
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
            lines.append("  ".join([*cells, row[-1]]).rstrip())
        stream.write("\n".join([*lines, outcome, ""]))
        stream.flush()
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(file=stream, force_terminal=True, width=120)
    table = Table(title=f"run {run.run_id}", title_justify="left")
    for column in _SUMMARY_COLUMNS:
        table.add_column(column, overflow="fold")
    for job, row in zip(run.jobs, _summary_rows(run), strict=True):
        table.add_row(*row[:2], _status_text(job), *row[3:])
    console.print(table)
    console.print(Text(outcome, style=_STYLES.get(run.status, "")))
