"""A running step holds its three standard streams and nothing else (issue 15, item 3), on
the standard loop and on uvloop (the server's), with and without the sandbox: listed from
outside, in /proc/<pid>/fd of every process of the job while it runs. And it leads its own
process group, in a session of its own when conveyor has a terminal to keep from it."""

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
from tests.terminal_probe import run_probe

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
    marker = f"{os.getpid()}{time.monotonic_ns() % 1_000_000:06d}.37"  # a unique sleep length
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
    deadline = time.monotonic() + 30
    while not groups.pgids and time.monotonic() < deadline:  # started
        await asyncio.sleep(0.01)
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


# A runner in a process of its own, with or without a controlling terminal: prints whether
# conveyor has one, then, from the step, whether the step can open it, and whether the step
# leads its own session and process group.
SESSION_PROBE = """
import asyncio, os
from pathlib import Path
from conveyor.engine.child import has_terminal
from conveyor.engine.runner import LocalRunner, ProcessGroups, StepSpec
script = (
    'if (exec 3</dev/tty) 2>/dev/null; then echo tty; else echo no-tty; fi; '
    'read -r _ _ _ _ group session _ < /proc/$$/stat; '
    'echo "$(( group == $$ )) $(( session == $$ ))"'
)
lines = []
spec = StepSpec(script, {"PATH": os.environ["PATH"]}, Path.cwd())
result = asyncio.run(
    LocalRunner(groups=ProcessGroups()).run_step(spec, lambda s, texts: lines.extend(texts))
)
print("probe", has_terminal(), result.exit_code, *lines, flush=True)
"""


@pytest.mark.parametrize(
    ("with_terminal", "expected"),
    [
        # A terminal: the step gets a session of its own and cannot reach the terminal.
        (True, "probe True 0 no-tty 1 1"),
        # None: its own process group in conveyor's session (nothing to detach from).
        (False, "probe False 0 no-tty 1 0"),
    ],
)
def test_a_step_leads_its_group_and_gets_a_session_only_to_leave_a_terminal(
    tmp_path: Path, with_terminal: bool, expected: str
) -> None:
    output = run_probe(SESSION_PROBE, tmp_path, with_terminal=with_terminal)
    assert expected in output, output
