"""Whether bubblewrap can make a job sandbox on this machine, for tests that need one.

`BWRAP_MISSING` is None when `bwrap` starts a sandbox as the engine uses it (own PID, IPC
and UTS namespaces, read-only root, its own /proc), else the reason it cannot, said in the
skip: the Makefile installs the Debian package `bubblewrap`, so a skip means the machine
refuses namespaces (an unprivileged container, user namespaces switched off), not that a
package is missing. `requires_bwrap` skips a test with that reason. Probed once per session.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

__all__ = ["BWRAP_MISSING", "requires_bwrap"]


def _bwrap_missing() -> str | None:
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "bwrap is not installed (make installs the Debian package bubblewrap)"
    probe = [bwrap, "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-net"]
    probe += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--", "true"]
    done = subprocess.run(probe, capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        return f"bwrap cannot create namespaces here: {done.stderr.strip()[-200:]}"
    return None


BWRAP_MISSING = _bwrap_missing()
requires_bwrap = pytest.mark.skipif(BWRAP_MISSING is not None, reason=str(BWRAP_MISSING))
