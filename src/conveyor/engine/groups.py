"""Process groups of running steps: the registry an interrupt stops, and the polite stop.

Every step leads its own process group (engine.child), so one signal reaches everything it
started. `ProcessGroups` holds the groups still running (`LIVE_GROUPS`: the one conveyor's
interrupt handlers kill); `stop_group` is SIGTERM, a grace period, SIGKILL, then a wait
until no live member is left (read from /proc: zombies do not count). A sandbox's leader is
bwrap's monitor, which would die of SIGTERM without passing it on, so for it the SIGTERM
goes to the other members (`spares_leader`).
Must not: start processes (engine.child) or decide what a stop means (runner.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from pathlib import Path

__all__ = [
    "LIVE_GROUPS",
    "ProcessGroups",
    "group_is_alive",
    "signal_group",
    "stop_group",
]


class ProcessGroups:
    """Process groups of steps still running, so an interrupt can stop them all. A plain
    slotted class: a dataclass costs 0.2 ms more to define on `conveyor run`'s start-up."""

    __slots__ = ("pgids",)

    def __init__(self) -> None:
        self.pgids: set[int] = set()

    def kill_all(self, sig: int = signal.SIGKILL) -> None:
        for pgid in list(self.pgids):
            signal_group(pgid, sig)


LIVE_GROUPS = ProcessGroups()


def signal_group(pgid: int, sig: int) -> bool:
    """Send `sig` to group `pgid`; False when the group is gone (or not ours)."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _live_members(pgid: int) -> list[int] | None:
    """The pids of group `pgid` that are not zombies; None without procfs."""
    try:
        entries = [p.name for p in Path("/proc").iterdir()]
    except OSError:
        return None
    members = []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # after the command: state, ppid, pgrp
        if int(fields[2]) == pgid and fields[0] != b"Z":
            members.append(int(entry))
    return members


def group_is_alive(pgid: int) -> bool:
    """Whether group `pgid` has a member that is not a zombie (zombies cannot be killed and
    vanish when reaped, so they do not count)."""
    if not signal_group(pgid, 0):
        return False
    members = _live_members(pgid)
    return members is None or bool(members)  # no procfs: trust kill(0)


def _terminate(pgid: int, *, spares_leader: bool) -> bool:
    """SIGTERM to group `pgid` (all but its leader when `spares_leader`); False when the
    group is gone."""
    if not spares_leader:
        return signal_group(pgid, signal.SIGTERM)
    if not signal_group(pgid, 0):
        return False
    for pid in _live_members(pgid) or ():
        if pid != pgid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)
    return True


async def stop_group(pgid: int, grace_s: float, *, spares_leader: bool = False) -> None:
    """SIGTERM the group (all but its leader when `spares_leader`: a sandbox's monitor),
    give it `grace_s`, SIGKILL what is left, wait until it is gone."""
    if not _terminate(pgid, spares_leader=spares_leader):
        return
    if await _gone_within(pgid, grace_s):
        return
    signal_group(pgid, signal.SIGKILL)
    await _gone_within(pgid, 5.0)  # SIGKILL cannot be ignored; give the kernel up to 5 s


async def _gone_within(pgid: int, timeout_s: float) -> bool:
    """Whether group `pgid` is gone within `timeout_s`. Polled from 1 ms up to every 20 ms:
    a sandbox's processes are still being killed by the kernel for a moment after its
    monitor exits, and a flat 20 ms poll would cost that much per step."""
    deadline = time.monotonic() + timeout_s
    delay_s = 0.001
    while time.monotonic() < deadline:
        if not group_is_alive(pgid):
            return True
        await asyncio.sleep(delay_s)
        delay_s = min(delay_s * 2, 0.02)
    return not group_is_alive(pgid)
