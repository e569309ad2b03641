"""What a conveyor process that starts jobs does to protect itself from them, shared by
`conveyor serve` and `conveyor worker`: make itself non-dumpable, and tell whether
bubblewrap can start the job sandbox here.

Must not: decide what a command does about a problem (refuse, warn): the commands do.
"""

from __future__ import annotations

import ctypes
import subprocess
import sys

import structlog

__all__ = ["bwrap_problem", "make_undumpable"]

log = structlog.get_logger(__name__)

_PR_SET_DUMPABLE = 4  # linux/prctl.h
_PROBE_TIMEOUT_S = 10.0


def make_undumpable(who: str = "server") -> None:
    """prctl(PR_SET_DUMPABLE, 0): processes of the same user (the jobs) can no longer read
    this process's /proc/<pid>/environ, mem, fd/ or cwd, nor ptrace it. Linux only; a
    failure is logged (`<who>.undumpable_failed`), not fatal (the sandbox hides the
    process anyway)."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        log.warning(f"{who}.undumpable_failed", errno=ctypes.get_errno())


def bwrap_problem() -> str | None:
    """Why `bwrap` cannot start a sandbox as jobs use it, or None."""
    import shutil

    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "bwrap is not installed"
    probe = [bwrap, "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--ro-bind", "/", "/"]
    probe += ["--dev", "/dev", "--proc", "/proc", "--", "true"]
    try:
        done = subprocess.run(
            probe, capture_output=True, timeout=_PROBE_TIMEOUT_S, check=False, text=True
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap did not run: {type(exc).__name__}"
    if done.returncode != 0:
        return (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
    return None
