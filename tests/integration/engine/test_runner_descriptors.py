"""A running step holds its three standard streams and nothing else (issue 15, item 3), on
the standard loop and on uvloop (the server's), with and without the sandbox: listed from
outside, in /proc/<pid>/fd of every process of the job while it runs."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
import uvloop

from conveyor.engine.runner import LocalRunner, ProcessGroups, StepSpec
from conveyor.engine.sandbox import Sandbox
from conveyor.model import Stream
from tests.sandboxing import requires_bwrap

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}


def _job_processes(marker: str) -> list[int]:
    """Live processes whose command line holds `marker`, bwrap's monitor aside (it is
    conveyor's, outside the sandbox, and holds its own namespace descriptors)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_bytes().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        is_job = any(marker.encode() in arg for arg in argv) and not argv[0].endswith(b"bwrap")
        if is_job and state != b"Z":
            found.append(int(entry.name))
    return found


def _descriptors(pid: int) -> dict[int, str]:
    held = {}
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            held[int(fd.name)] = str(fd.readlink())
        except OSError:
            continue
    return held


async def _held_while_running(tmp_path: Path, sandbox: Sandbox) -> dict[int, dict[int, str]]:
    marker = f"{time.monotonic_ns() % 1_000_000}.37"  # a unique sleep length
    groups = ProcessGroups()
    runner = LocalRunner(grace_s=0.3, groups=groups)
    spec = StepSpec(
        f"sleep {marker}; echo after",  # a shell that waits, and its child
        {"PATH": os.environ["PATH"]},
        tmp_path,
        sandbox=sandbox,
        workspace=tmp_path,
    )

    def ignore(stream: Stream, lines: Sequence[str]) -> None:
        pass

    task = asyncio.ensure_future(runner.run_step(spec, ignore))
    deadline = time.monotonic() + 10
    while len(pids := _job_processes(marker)) < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    held = {pid: _descriptors(pid) for pid in pids}
    groups.kill_all()
    await asyncio.wait_for(task, 10)
    return held


@pytest.mark.parametrize("loop", sorted(LOOPS))
@pytest.mark.parametrize("mode", ["none", pytest.param("bwrap", marks=requires_bwrap)])
def test_a_running_job_holds_only_its_standard_streams(
    tmp_path: Path, loop: str, mode: str
) -> None:
    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        sandbox = Sandbox("bwrap") if mode == "bwrap" else Sandbox()
        held = runner.run(_held_while_running(tmp_path, sandbox))
    assert len(held) == 2, held  # the shell and its sleep
    for fds in held.values():
        assert sorted(fds) == [0, 1, 2], held
        assert fds[0] == "/dev/null"
        assert fds[1].startswith("pipe:") and fds[2].startswith("pipe:"), held
        assert fds[1] != fds[2]
