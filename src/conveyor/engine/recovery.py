"""Crash recovery: runs whose conveyor process died are closed, and their leftovers killed.

A run marked `running` whose owner process is gone (its PID is dead, or the PID now belongs
to another process: different start ticks) was interrupted: each process group it recorded
is killed (SIGTERM, a short grace, SIGKILL) when it is still ours, its running jobs become
`failed`/`interrupted`, its pending jobs `canceled`/`interrupted`, and the run
`failed`/`interrupted`. "Still ours" is the PID-reuse guard: the group leader must have the
start ticks recorded when it was spawned; when the leader has exited, the group id stays
reserved by the kernel while members remain, and members must have started after it.
Linux /proc only; elsewhere an existing PID counts as alive and nothing is killed.
Must not touch log files or decide job outcomes other than these.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from conveyor.model import JobRecord, Status
from conveyor.store.base import LiveProcess, RunStore

__all__ = [
    "INTERRUPTED",
    "is_alive",
    "kill_group",
    "process_start_ticks",
    "recover_orphans",
]

INTERRUPTED = "interrupted"
_PROC = Path("/proc")
_DEAD_STATES = frozenset("ZXx")


@dataclass(frozen=True, slots=True)
class _Stat:
    pid: int
    state: str
    pgid: int
    started_ticks: int

    @property
    def is_running(self) -> bool:
        return self.state not in _DEAD_STATES


def _read_stat(pid: int) -> _Stat | None:
    """Fields of /proc/PID/stat. `comm` (field 2) may hold spaces and parentheses, so the
    fields are counted from the last `)`."""
    try:
        text = (_PROC / str(pid) / "stat").read_bytes().decode("utf-8", "replace")
    except OSError:
        return None
    rest = text[text.rfind(")") + 2 :].split()
    # rest[0] is field 3 (state); field N is rest[N - 3].
    try:
        return _Stat(pid=pid, state=rest[0], pgid=int(rest[2]), started_ticks=int(rest[19]))
    except (IndexError, ValueError):
        return None


def process_start_ticks(pid: int) -> int | None:
    """The start time of `pid` in clock ticks since boot (field 22 of /proc/PID/stat), or
    None if there is no such process (or no /proc)."""
    stat = _read_stat(pid)
    return None if stat is None else stat.started_ticks


def is_alive(pid: int, started_ticks: int) -> bool:
    """True when `pid` runs and is the process that had `started_ticks` (0: unknown, then
    any live process with that PID counts). A zombie is dead."""
    if not _PROC.joinpath("self", "stat").exists():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    stat = _read_stat(pid)
    if stat is None or not stat.is_running:
        return False
    return started_ticks in (0, stat.started_ticks)


def _group_members(pgid: int) -> list[_Stat]:
    members: list[_Stat] = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        stat = _read_stat(int(entry.name))
        if stat is not None and stat.pgid == pgid and stat.is_running:
            members.append(stat)
    return members


def _is_ours(proc: LiveProcess) -> bool:
    leader = _read_stat(proc.pgid)
    if leader is not None and leader.is_running:
        return leader.started_ticks == proc.started_ticks and leader.pgid == proc.pgid
    members = _group_members(proc.pgid)
    return bool(members) and all(m.started_ticks >= proc.started_ticks for m in members)


def kill_group(proc: LiveProcess, *, grace_s: float = 2.0) -> bool:
    """Stop the recorded group if it is still ours: SIGTERM, up to `grace_s` for it to go,
    then SIGKILL. Returns True if signals were sent."""
    if not _PROC.is_dir() or not _is_ours(proc):
        return False
    if not _signal_group(proc.pgid, signal.SIGTERM):
        return False
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not _group_members(proc.pgid):
            return True
        time.sleep(0.02)
    _signal_group(proc.pgid, signal.SIGKILL)
    deadline = time.monotonic() + grace_s
    while _group_members(proc.pgid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return True


def _signal_group(pgid: int, sig: signal.Signals) -> bool:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    return True


def recover_orphans(store: RunStore, *, now: datetime, grace_s: float = 2.0) -> list[str]:
    """Close every run whose owner process is gone; returns their ids (oldest first) for
    the caller to report (this module does not log: the CLI's stdout may be JSON).
    Cheap when nothing is running: one query."""
    recovered: list[str] = []
    for run_id, owner_pid, owner_ticks in store.orphaned_runs():
        if is_alive(owner_pid, owner_ticks):
            continue
        for proc in store.processes(run_id):
            kill_group(proc, grace_s=grace_s)
            store.remove_process(run_id, proc.pgid)
        run = store.get_run(run_id)
        for job in run.jobs if run is not None else ():
            if not job.status.is_final:
                store.save_job(run_id, _interrupted(job, now))
        store.update_run(run_id, status=Status.FAILED, finished_at=now, reason=INTERRUPTED)
        recovered.append(run_id)
    return recovered


def _interrupted(job: JobRecord, now: datetime) -> JobRecord:
    status = Status.FAILED if job.status is Status.RUNNING else Status.CANCELED
    steps = tuple(
        step if step.status.is_final else replace(step, status=status, finished_at=now)
        for step in job.steps
    )
    return replace(
        job,
        status=status,
        reason=INTERRUPTED,
        finished_at=now if job.started_at is not None else job.finished_at,
        steps=steps,
    )
