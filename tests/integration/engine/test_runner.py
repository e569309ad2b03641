"""LocalRunner against real processes: output framing, deadlines, cancellation, survivors."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from conveyor.engine.runner import (
    CUT_MARKER,
    MAX_LINE_CHARS,
    LocalRunner,
    ProcessGroups,
    StepSpec,
    group_is_alive,
)
from conveyor.model import Stream

PY = sys.executable


class Lines:
    def __init__(self) -> None:
        self.items: list[tuple[Stream, str]] = []

    def __call__(self, stream: Stream, lines: Sequence[str]) -> None:
        self.items.extend((stream, line) for line in lines)

    def of(self, stream: Stream) -> list[str]:
        return [text for s, text in self.items if s is stream]


def _spec(tmp_path: Path, script: str, *, timeout_s: float | None = None) -> StepSpec:
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    env = {"PATH": os.environ["PATH"], "PY": PY}
    return StepSpec(script=script, env=env, cwd=tmp_path, deadline=deadline)


def _runner() -> LocalRunner:
    return LocalRunner(grace_s=0.3, groups=ProcessGroups())


def _pids_of(marker: str) -> list[int]:
    """Live (non-zombie) processes whose command line contains `marker`."""
    found = []
    for entry in (p.name for p in Path("/proc").iterdir()):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in cmdline and state != "Z":
            found.append(int(entry))
    return found


async def test_runner_streams_stdout_and_stderr(tmp_path: Path) -> None:
    lines = Lines()
    result = await _runner().run_step(_spec(tmp_path, "echo out; echo err >&2"), lines)
    assert (
        result.exit_code,
        lines.of(Stream.STDOUT),
        lines.of(Stream.STDERR),
    ) == (0, ["out"], ["err"])


async def test_runner_reports_exit_code(tmp_path: Path) -> None:
    result = await _runner().run_step(_spec(tmp_path, "exit 3"), Lines())
    assert (result.exit_code, result.is_success) == (3, False)


async def test_runner_bash_uses_pipefail(tmp_path: Path) -> None:
    result = await _runner().run_step(_spec(tmp_path, "false | true"), Lines())
    assert result.exit_code == 1


async def test_runner_sh_shell(tmp_path: Path) -> None:
    spec = StepSpec("false; echo never", {"PATH": os.environ["PATH"]}, tmp_path, "sh")
    lines = Lines()
    result = await _runner().run_step(spec, lines)
    assert (result.exit_code, lines.of(Stream.STDOUT)) == (1, [])


async def test_runner_keeps_last_line_without_newline(tmp_path: Path) -> None:
    lines = Lines()
    await _runner().run_step(_spec(tmp_path, "printf 'a\\nb'"), lines)
    assert lines.of(Stream.STDOUT) == ["a", "b"]


async def test_runner_replaces_invalid_utf8(tmp_path: Path) -> None:
    lines = Lines()
    await _runner().run_step(_spec(tmp_path, "printf 'ok\\377\\376end\\n'"), lines)
    assert lines.of(Stream.STDOUT) == ["ok\ufffd\ufffdend"]


async def test_runner_cuts_long_lines(tmp_path: Path) -> None:
    code = "import sys; sys.stdout.write('x' * 200 * 1024 + '\\nnext\\n')"
    lines = Lines()
    await _runner().run_step(_spec(tmp_path, f'"$PY" -c "{code}"'), lines)
    out = lines.of(Stream.STDOUT)
    assert (len(out), out[0], out[1]) == (2, "x" * MAX_LINE_CHARS + CUT_MARKER, "next")


async def test_runner_cannot_start_unknown_shell(tmp_path: Path) -> None:
    spec = StepSpec("true", {}, tmp_path, "/nonexistent/shell")
    result = await _runner().run_step(spec, Lines())
    assert result.exit_code is None and result.error is not None


async def test_runner_kills_background_children_after_exit(tmp_path: Path) -> None:
    marker = f"conveyor-bg-{os.getpid()}-{time.time_ns()}"
    script = f'"$PY" -c "import time; time.sleep(1000)" {marker} & echo started'
    started = time.monotonic()
    result = await _runner().run_step(_spec(tmp_path, script), Lines())
    assert (result.exit_code, _pids_of(marker)) == (0, [])
    assert time.monotonic() - started < 5


async def test_runner_timeout_kills_whole_group(tmp_path: Path) -> None:
    marker = f"conveyor-to-{os.getpid()}-{time.time_ns()}"
    script = f'"$PY" -c "import time; time.sleep(1000)" {marker} & sleep 1000'
    result = await _runner().run_step(_spec(tmp_path, script, timeout_s=0.5), Lines())
    assert (result.exit_code, result.timed_out, _pids_of(marker)) == (None, True, [])


async def test_runner_kills_child_ignoring_sigterm(tmp_path: Path) -> None:
    marker = f"conveyor-ign-{os.getpid()}-{time.time_ns()}"
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(1000)"
    script = f'"$PY" -c "{code}" {marker}'
    result = await _runner().run_step(_spec(tmp_path, script, timeout_s=0.5), Lines())
    assert (result.timed_out, _pids_of(marker)) == (True, [])


async def test_runner_cancel_kills_group_and_propagates(tmp_path: Path) -> None:
    marker = f"conveyor-cancel-{os.getpid()}-{time.time_ns()}"
    groups = ProcessGroups()
    runner = LocalRunner(grace_s=0.3, groups=groups)
    script = f'"$PY" -c "import time; time.sleep(1000)" {marker}'
    task = asyncio.create_task(runner.run_step(_spec(tmp_path, script), Lines()))
    while not groups.pgids:
        await asyncio.sleep(0.01)
    pgid = next(iter(groups.pgids))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (False, [], set()) == (group_is_alive(pgid), _pids_of(marker), groups.pgids)


async def test_process_groups_kill_all(tmp_path: Path) -> None:
    groups = ProcessGroups()
    runner = LocalRunner(grace_s=0.3, groups=groups)
    task = asyncio.create_task(runner.run_step(_spec(tmp_path, "sleep 1000"), Lines()))
    while not groups.pgids:
        await asyncio.sleep(0.01)
    groups.kill_all()
    result = await asyncio.wait_for(task, 5)
    assert result.exit_code == 128 + 9
