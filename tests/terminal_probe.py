"""Running a Python probe with a controlling terminal (a pty) or with none, for the tests of
what conveyor's children get (their own process group; a session only to leave a terminal).

    output = run_probe(code, tmp_path, with_terminal=True)   # what the probe printed
"""

from __future__ import annotations

import contextlib
import os
import pty
import subprocess
import sys
from pathlib import Path

__all__ = ["run_probe"]


def run_probe(code: str, cwd: Path, *, with_terminal: bool) -> str:
    """Run `python -c code` in `cwd`, its controlling terminal a pty (`with_terminal`) or
    none whatever pytest's; return what it printed."""
    return _with_terminal(code, cwd) if with_terminal else _without_terminal(code, cwd)


def _with_terminal(code: str, cwd: Path) -> str:
    pid, fd = pty.fork()  # the child's controlling terminal is the pty
    if pid == 0:  # the child: becomes the probe, never returns into pytest
        try:
            os.chdir(cwd)
            os.execv(sys.executable, [sys.executable, "-c", code])  # noqa: S606
        finally:
            os._exit(127)
    output = b""
    with contextlib.suppress(OSError):  # EIO once the child closed the pty
        while chunk := os.read(fd, 4096):
            output += chunk
    os.close(fd)
    os.waitpid(pid, 0)
    return output.decode()


def _without_terminal(code: str, cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        start_new_session=True,  # no controlling terminal, whatever pytest's
        timeout=60,
        check=True,
    )
    return done.stdout
