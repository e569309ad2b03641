"""engine.recovery with real processes: a SIGKILLed owner's run is closed and its leftover
process group killed; a recycled PID (other start ticks) is never killed."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conveyor.engine.recovery import is_alive, kill_group, process_start_ticks, recover_orphans
from conveyor.model import EventKind, JobRecord, RunRecord, Status, StepRecord
from conveyor.store import open_store
from conveyor.store.base import LiveProcess
from conveyor.store.sql import SqlRunStore

NOW = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)

_OWNER = """
import os, subprocess, sys, time
from datetime import UTC, datetime
from pathlib import Path
from conveyor.engine.recovery import process_start_ticks
from conveyor.model import EventKind, JobRecord, RunRecord, Status
from conveyor.store import open_store
from conveyor.store.base import LiveProcess
store = open_store(Path(sys.argv[1]))
now = datetime.now(UTC)
store.create_run(RunRecord("r-crash", "x", "main", "s", EventKind.PUSH, Status.RUNNING,
                           created_at=now, started_at=now))
store.claim_run("r-crash", owner_pid=os.getpid(),
                owner_started_ticks=process_start_ticks(os.getpid()))
store.save_job("r-crash", JobRecord("build", "build", Status.SUCCESS, attempt=1))
store.save_job("r-crash", JobRecord("test", "test", Status.RUNNING, attempt=1, started_at=now))
store.save_job("r-crash", JobRecord("deploy", "deploy", Status.PENDING))
group = subprocess.Popen(["sleep", "1000"], start_new_session=True)
store.add_process(LiveProcess("r-crash", "test", group.pid, process_start_ticks(group.pid)))
print(group.pid, flush=True)
time.sleep(1000)
"""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlRunStore]:
    opened = open_store(tmp_path)
    yield opened
    opened.close()


def spawn_group(*argv: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(list(argv), start_new_session=True)


def stop(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        os.killpg(child.pid, signal.SIGKILL)
    child.wait(timeout=10)


def test_recover_orphans_after_owner_sigkill(tmp_path: Path, store: SqlRunStore) -> None:
    owner = subprocess.Popen(
        [sys.executable, "-c", _OWNER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert owner.stdout is not None
    pgid = int(owner.stdout.readline())
    owner.stdout.close()
    leader_ticks = process_start_ticks(pgid)
    assert leader_ticks is not None
    owner.send_signal(signal.SIGKILL)
    owner.wait(timeout=10)
    try:
        recovered = recover_orphans(store, now=NOW, grace_s=5)
        assert recovered == ["r-crash"]
        assert not is_alive(pgid, leader_ticks)
    finally:
        if is_alive(pgid, leader_ticks or 0):
            os.killpg(pgid, signal.SIGKILL)
    run = store.get_run("r-crash")
    assert run is not None
    assert (run.status, run.reason, run.finished_at) == (Status.FAILED, "interrupted", NOW)
    jobs = {job.name: (job.status, job.reason) for job in run.jobs}
    assert jobs == {
        "build": (Status.SUCCESS, None),
        "test": (Status.FAILED, "interrupted"),
        "deploy": (Status.CANCELED, "interrupted"),
    }
    assert store.processes("r-crash") == []


def make_running_run(store: SqlRunStore, run_id: str, owner_pid: int, owner_ticks: int) -> None:
    store.create_run(
        RunRecord(run_id, "x", "main", "s", EventKind.PUSH, Status.RUNNING, created_at=NOW)
    )
    store.claim_run(run_id, owner_pid=owner_pid, owner_started_ticks=owner_ticks)


def test_recover_orphans_never_kills_a_recycled_pid(store: SqlRunStore) -> None:
    # Our own PID with other start ticks stands for a dead owner whose PID was reused.
    my_ticks = process_start_ticks(os.getpid())
    assert my_ticks is not None
    make_running_run(store, "r-reused", os.getpid(), my_ticks + 1)
    stranger = spawn_group("sleep", "1000")
    try:
        ticks = process_start_ticks(stranger.pid)
        assert ticks is not None
        store.add_process(LiveProcess("r-reused", "test", stranger.pid, ticks + 7))
        assert recover_orphans(store, now=NOW, grace_s=0.2) == ["r-reused"]
        assert stranger.poll() is None
    finally:
        stop(stranger)


def test_recover_orphans_leaves_runs_of_live_owners(store: SqlRunStore) -> None:
    my_ticks = process_start_ticks(os.getpid())
    assert my_ticks is not None
    make_running_run(store, "r-live", os.getpid(), my_ticks)
    store.save_job("r-live", JobRecord("test", "test", Status.RUNNING, attempt=1))
    assert recover_orphans(store, now=NOW) == []
    run = store.get_run("r-live")
    assert run is not None
    assert (run.status, run.jobs[0].status) == (Status.RUNNING, Status.RUNNING)


def test_recover_orphans_marks_running_steps_failed(store: SqlRunStore) -> None:
    make_running_run(store, "r-steps", 2**22 + 12345, 1)  # above the default pid_max
    step = StepRecord("pytest", Status.RUNNING, started_at=NOW)
    store.save_job("r-steps", JobRecord("t", "t", Status.RUNNING, attempt=2, steps=(step,)))
    recover_orphans(store, now=NOW)
    run = store.get_run("r-steps")
    assert run is not None
    assert run.jobs[0].steps == (StepRecord("pytest", Status.FAILED, None, NOW, NOW),)


def test_kill_group_escalates_to_sigkill(tmp_path: Path) -> None:
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(1000)"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], start_new_session=True, stdout=subprocess.PIPE
    )
    assert child.stdout is not None
    child.stdout.readline()
    child.stdout.close()
    try:
        ticks = process_start_ticks(child.pid)
        assert ticks is not None
        assert kill_group(LiveProcess("r", "j", child.pid, ticks), grace_s=0.2)
        assert child.wait(timeout=5) == -signal.SIGKILL
    finally:
        stop(child)


def test_process_start_ticks_parses_past_odd_command_names(tmp_path: Path) -> None:
    sleep = shutil.which("sleep")
    assert sleep is not None
    odd = tmp_path / "a) (b c"
    odd.symlink_to(sleep)
    before = process_start_ticks(os.getpid())
    child = spawn_group(str(odd), "1000")
    try:
        ticks = process_start_ticks(child.pid)
        now_ticks = time.clock_gettime(time.CLOCK_BOOTTIME) * os.sysconf("SC_CLK_TCK")
        assert before is not None
        assert ticks is not None
        assert before <= ticks <= now_ticks + 1
    finally:
        stop(child)


def test_process_start_ticks_of_missing_pid_is_none() -> None:
    assert process_start_ticks(2**22 + 12345) is None
