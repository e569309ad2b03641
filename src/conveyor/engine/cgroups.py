"""cgroup v2 limits for sandboxed jobs, where this process was given a cgroup v2 subtree.

`find_cgroups()` (once per process) looks for a usable cgroup v2: the unified hierarchy at
/sys/fs/cgroup (its root has `cgroup.controllers`; cgroup v1 and the hybrid layout do not,
their v2 part has no controllers), this process's own cgroup (the `0::` line of
/proc/self/cgroup) writable by it (delegated: a systemd unit with `Delegate=yes`, `systemd-run
--user --scope …`, a container with its own cgroup namespace), offering the `memory` and
`pids` controllers. cgroup v2 lets a cgroup hand controllers to its children only while it
holds no process itself, so conveyor first moves itself into a `conveyor` leaf of its own
cgroup D, then enables `+memory +pids` in D; each sandboxed step then gets its own child of
D (`D/job-<pid>-<n>`) with `memory.max` (and `memory.swap.max` 0), `pids.max`, removed when
the step is over. Anything missing or refused (another process in D, a read-only
hierarchy; conveyor then goes back to its cgroup): `find_cgroups()` answers None and
`reason()` says why, and the sandbox keeps rlimits (`prlimit`). CPU seconds stay an rlimit
either way: cgroup v2 caps a CPU rate (`cpu.max`), not a total.

Must not: decide policy (engine.sandbox builds the argv that puts the job in its cgroup)
or run jobs (runner.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from conveyor.engine.sandbox import Sandbox

__all__ = [
    "CGROUP_ROOT",
    "CgroupTree",
    "CgroupUnusableError",
    "find_cgroups",
    "prepare_cgroups",
    "reason",
]

CGROUP_ROOT = Path("/sys/fs/cgroup")
_CONTROLLERS = ("memory", "pids")


class CgroupUnusableError(Exception):
    """Why no cgroup v2 subtree can be used here (said by `reason()`)."""


@dataclass(slots=True)
class CgroupTree:
    """A delegated cgroup v2 folder `parent` whose children get the memory and pids
    controllers: one child per sandboxed step (`create`, then `remove`)."""

    parent: Path
    _counter: Iterator[int] = field(default_factory=itertools.count)

    def create(self, sandbox: Sandbox) -> Path:
        """A new cgroup with `sandbox`'s memory and process limits: its folder. OSError
        when it cannot be made (then nothing is left behind)."""
        path = self.parent / f"job-{os.getpid()}-{next(self._counter)}"
        path.mkdir()
        try:
            if sandbox.max_memory_mb is not None:
                _write(path / "memory.max", str(sandbox.max_memory_mb * 1024 * 1024))
                swap = path / "memory.swap.max"
                if swap.exists():  # no swap beyond the memory limit (absent without swap)
                    _write(swap, "0")
            if sandbox.max_processes is not None:
                _write(path / "pids.max", str(sandbox.max_processes))
        except OSError:
            path.rmdir()
            raise
        return path

    async def remove(self, path: Path, timeout_s: float = 2.0) -> bool:
        """Kill what is left in `path` (`cgroup.kill`, Linux ≥ 5.14) and remove it once its
        last process has exited (the kernel unlinks it a moment after the job's pipes
        close); whether it is gone within `timeout_s`."""
        _kill(path)
        deadline = time.monotonic() + timeout_s
        delay_s = 0.001
        while not _removed(path):
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2, 0.05)
        return True


def _kill(path: Path) -> None:
    with contextlib.suppress(OSError):  # absent before Linux 5.14: the sandbox did it
        fd = os.open(path / "cgroup.kill", os.O_WRONLY)  # never created: the kernel's file
        try:
            os.write(fd, b"1")
        finally:
            os.close(fd)


def _removed(path: Path) -> bool:
    try:
        path.rmdir()
    except FileNotFoundError:
        return True
    except OSError:  # EBUSY: still populated
        return False
    return True


def _write(path: Path, text: str) -> None:
    with open(path, "w", encoding="ascii") as file:
        file.write(text)


def prepare_cgroups(root: Path, self_cgroup: Path, pid: int) -> CgroupTree:
    """The job tree under this process's own cgroup (module docstring); process `pid` (this
    one) is moved into its `conveyor` leaf first. CgroupUnusableError says why not."""
    if not (root / "cgroup.controllers").is_file():
        raise CgroupUnusableError(f"{root} is not the cgroup v2 unified hierarchy (v1 or hybrid)")
    own = _own_cgroup(self_cgroup)
    delegated = root / own.lstrip("/")
    if not os.access(delegated, os.W_OK | os.X_OK):
        raise CgroupUnusableError(f"{delegated} (this process's cgroup) is not writable")
    offered = set((delegated / "cgroup.controllers").read_text().split())
    missing = [name for name in _CONTROLLERS if name not in offered]
    if missing:
        raise CgroupUnusableError(f"{delegated} does not offer {', '.join(missing)}")
    enabled = set((delegated / "cgroup.subtree_control").read_text().split())
    if not set(_CONTROLLERS) <= enabled:
        leaf = delegated / "conveyor"
        try:
            leaf.mkdir(exist_ok=True)
            _write(leaf / "cgroup.procs", str(pid))  # no process left in `delegated` …
            _write(delegated / "cgroup.subtree_control", " ".join(f"+{n}" for n in _CONTROLLERS))
        except OSError as exc:  # … unless another one lives there: not ours alone
            with contextlib.suppress(OSError):  # back where it was, the leaf gone
                _write(delegated / "cgroup.procs", str(pid))
                leaf.rmdir()
            raise CgroupUnusableError(
                f"{delegated}: cannot enable memory and pids ({exc.strerror})"
            ) from exc
    return CgroupTree(delegated)


def _own_cgroup(self_cgroup: Path) -> str:
    for line in self_cgroup.read_text().splitlines():
        if line.startswith("0::"):
            return line[3:]
    raise CgroupUnusableError(f"{self_cgroup} has no cgroup v2 entry")


@functools.cache
def _found() -> CgroupTree | str:
    try:
        return prepare_cgroups(CGROUP_ROOT, Path("/proc/self/cgroup"), os.getpid())
    except CgroupUnusableError as exc:
        return str(exc)
    except OSError as exc:
        return f"{CGROUP_ROOT}: {exc.strerror or exc}"


def find_cgroups() -> CgroupTree | None:
    """The job tree of this process, or None: rlimits instead (`reason()` says why)."""
    found = _found()
    return found if isinstance(found, CgroupTree) else None


def reason() -> str | None:
    """Why `find_cgroups()` is None (None when it is not)."""
    found = _found()
    return found if isinstance(found, str) else None
