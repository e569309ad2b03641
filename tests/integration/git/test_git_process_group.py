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

from pathlib import Path

import pytest

from tests.terminal_probe import run_probe

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


@pytest.mark.parametrize(
    ("with_terminal", "expected"),
    [
        # A terminal: git gets a session of its own (and cannot reach the terminal).
        (True, "probe True 1 1 / 1 1"),
        # None: start_git's leads its group in conveyor's session (nothing to detach from).
        (False, "probe False 1 0 / 1 1"),
    ],
)
def test_git_leads_its_group_and_gets_a_session_only_to_leave_a_terminal(
    tmp_path: Path, with_terminal: bool, expected: str
) -> None:
    output = run_probe(PROBE, tmp_path, with_terminal=with_terminal)

    assert expected in output, output
