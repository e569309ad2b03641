"""Unit tests of conveyor.commands.terminal: plain lines, the live table, the summary."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from rich.console import Console

from conveyor.commands.terminal import LiveView, PlainView, open_view, render_summary
from conveyor.model import EventKind, JobRecord, LogRecord, RunRecord, Status, Stream

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _job(name: str, status: Status, **fields: object) -> JobRecord:
    return JobRecord(name=name, stage="test", status=status, **fields)  # type: ignore[arg-type]


def _line(job: str, n: int, text: str) -> LogRecord:
    return LogRecord(T0, "r1", job, "s", Stream.STDOUT, n, text)


def test_plain_view_prefixes_lines_and_reports_ends() -> None:
    out = io.StringIO()
    with PlainView(out) as view:
        view.job_updated(_job("build", Status.RUNNING, attempt=1))
        view.lines_written("build", [_line("build", 1, "compiling"), _line("build", 2, "done")])
        view.job_updated(
            _job(
                "build",
                Status.SUCCESS,
                attempt=1,
                started_at=T0,
                finished_at=T0 + timedelta(seconds=1.5),
            )
        )
        view.job_updated(_job("docs", Status.SKIPPED, reason="needed job x failed"))
    assert out.getvalue().splitlines() == [
        "[build] running (attempt 1)",
        "[build] compiling",
        "[build] done",
        "[build] success in 1.50s",
    ]


def test_plain_view_marks_allowed_failure() -> None:
    out = io.StringIO()
    with PlainView(out) as view:
        view.job_updated(_job("lint", Status.FAILED, attempt=1, allow_failure=True))
    assert out.getvalue() == "[lint] failed (allowed) in \n"


def test_live_view_table_shows_last_line_and_status() -> None:
    console = Console(file=io.StringIO(), width=100, force_terminal=False)
    view = LiveView(console, ["build", "test"])
    view.job_updated(_job("build", Status.RUNNING, attempt=2, started_at=T0))
    view.lines_written("build", [_line("build", 1, "first"), _line("build", 2, "latest")])
    view.job_updated(_job("extra", Status.PENDING))
    console.print(view._table())
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert ("build" in text, "latest" in text, "first" in text, "running" in text) == (
        True,
        True,
        False,
        True,
    )


def test_open_view_picks_plain_when_not_live() -> None:
    view = open_view(io.StringIO(), ["a"], is_live=False)
    assert isinstance(view, PlainView)


def _failed_run() -> RunRecord:
    return RunRecord(
        run_id="r1",
        repo="x",
        ref="main",
        sha="abc",
        event=EventKind.PUSH,
        status=Status.FAILED,
        created_at=T0,
        started_at=T0,
        finished_at=T0 + timedelta(seconds=3),
        jobs=(
            _job("build", Status.FAILED, attempt=2, reason="step 'make' exited with code 2"),
            _job("lint", Status.FAILED, attempt=1, allow_failure=True),
        ),
    )


def test_render_summary_lists_jobs_and_outcome() -> None:
    out = io.StringIO()
    render_summary(_failed_run(), out, is_tty=True)
    text = out.getvalue()
    assert ("exited with code 2" in text, "pipeline failed in 3.0s" in text) == (True, True)


def test_render_summary_plain_is_aligned_text() -> None:
    out = io.StringIO()
    render_summary(_failed_run(), out, is_tty=False)
    assert out.getvalue().splitlines() == [
        "run r1",
        "job    stage  status            attempt  time  reason",
        "build  test   failed            2              step 'make' exited with code 2",
        "lint   test   failed (allowed)  1",
        "pipeline failed in 3.0s",
    ]
