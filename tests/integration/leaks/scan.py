"""Planted secrets and the search for them: every leak test plants distinct fake tokens
(long, random-looking, unique per test) and asserts that none of them appears in anything
the product showed or stored: process output, HTTP bodies and headers, log lines, every
file under a folder (run records, JSONL logs, the SQLite file's bytes, snapshots).
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

__all__ = ["base64_of", "conveyor", "env_for", "find_leaks", "plant", "tree_bytes"]


def plant(label: str) -> str:
    """A fake token no output could contain by chance: `label` + 40 random hex digits."""
    return f"{label}{os.urandom(20).hex()}"


def find_leaks(secrets: Iterable[str], *blobs: str | bytes) -> list[str]:
    """The secrets found in any of `blobs` (empty when nothing leaked). The planted tokens
    are plain ASCII letters and digits, so their JSON-escaped form is the raw value."""
    data = [b if isinstance(b, bytes) else b.encode("utf-8", "surrogateescape") for b in blobs]
    return [s for s in secrets if any(s.encode() in blob for blob in data)]


def tree_bytes(root: Path) -> bytes:
    """Every file name and every file's bytes under `root`, as one blob."""
    parts: list[bytes] = []
    for path in sorted(root.rglob("*")):
        parts.append(str(path.relative_to(root)).encode("utf-8", "surrogateescape"))
        if path.is_file() and not path.is_symlink():
            parts.append(path.read_bytes())
    return b"\n".join(parts)


def base64_of(secret: str) -> str:
    return base64.b64encode(secret.encode()).decode()


def env_for(home: Path, **extra: str) -> dict[str, str]:
    """The test's environment without any CONVEYOR_* setting, with its own home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR")}
    env.update(CONVEYOR_HOME=str(home), **extra)
    return env


def conveyor(
    cwd: Path, *args: str, env: dict[str, str], stdin: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m conveyor ARGS` in `cwd`, its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "conveyor", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        errors="surrogateescape",
        timeout=60,
        check=False,
        input=None if stdin is None else stdin.decode(),
    )
