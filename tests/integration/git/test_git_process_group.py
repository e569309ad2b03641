"""Every git process leads its own process group (a kill stops git and its helpers). One
started by `policy.start_git` (what `conveyor run`'s describe uses) gets its own session only
when conveyor has a controlling terminal to keep it from: `setsid` costs every such start a
new scheduler autogroup (docs/benchmarks.md, "CLI start-up"), for nothing without one. The
async `adapter.run_git` always gives a session (uvloop has no `process_group`).

A probe in a process of its own, with a pty as its controlling terminal or with none, starts
git through both; git runs an alias whose shell reads git's own /proc stat:
`<leads its group> <leads its session>`.
"""

from __future__ import annotations

import contextlib
import os
import pty
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

PROBE = """
import asyncio
from pathlib import Path
from conveyor.git.adapter import run_git
from conveyor.git.policy import git_environment, has_terminal, start_git
alias = (
    "alias.probe=!read -r _ _ _ _ group session _ < /proc/$PPID/stat; "
    'echo "$(( group == $PPID )) $(( session == $PPID ))"'
)
args, env = ["-c", alias, "probe"], git_environment()
started = start_git(Path.cwd(), args, env).communicate(timeout=30)[0].decode().strip()
awaited = asyncio.run(run_git(Path.cwd(), args, timeout_s=30, hint="", env=env)).strip()
print("probe", has_terminal(), started, "/", awaited, flush=True)
"""


def _probe_with_terminal(tmp_path: Path) -> str:
    pid, fd = pty.fork()  # the child's controlling terminal is the pty
    if pid == 0:  # the child: becomes the probe, never returns into pytest
        try:
            os.chdir(tmp_path)
            os.execv(sys.executable, [sys.executable, "-c", PROBE])  # noqa: S606
        finally:
            os._exit(127)
    output = b""
    with contextlib.suppress(OSError):  # EIO once the child closed the pty
        while chunk := os.read(fd, 4096):
            output += chunk
    os.close(fd)
    os.waitpid(pid, 0)
    return output.decode()


def _probe_without_terminal(tmp_path: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        start_new_session=True,  # no controlling terminal, whatever pytest's
        timeout=60,
        check=True,
    )
    return done.stdout


@pytest.mark.parametrize(
    ("probe", "expected"),
    [
        # A terminal: git gets a session of its own (and cannot reach the terminal).
        (_probe_with_terminal, "probe True 1 1 / 1 1"),
        # None: start_git's leads its group in conveyor's session (nothing to detach from).
        (_probe_without_terminal, "probe False 1 0 / 1 1"),
    ],
)
def test_git_leads_its_group_and_gets_a_session_only_to_leave_a_terminal(
    tmp_path: Path, probe: Callable[[Path], str], expected: str
) -> None:
    output = probe(tmp_path)

    assert expected in output, output
