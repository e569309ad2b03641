"""A full disk is a clear failure, not a crash (issue 15, item 6): conveyor's home on a
2 MiB tmpfs and a job printing 400,000 lines; and the log sink on a file that is always
full (/dev/full), which needs no mount."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conveyor.errors import StoreError
from conveyor.model import LogRecord, Stream
from conveyor.store.logfiles import RESERVE_BYTES, RunLogs, job_log_path

SPAM = "jobs:\n  spam:\n    run: seq 400000\n"
SMALL = "jobs:\n  ok:\n    run: echo fine\n"


def _conveyor(project: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR")}
    return subprocess.run(
        [sys.executable, "-m", "conveyor", *args],
        cwd=project,
        env={**env, "CONVEYOR_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def small_home(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs (needs the right to mount: root, or CAP_SYS_ADMIN)."""
    home = tmp_path / "home"
    home.mkdir()
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(home)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mount.stderr.strip()[-200:]}")
    try:
        yield home
    finally:
        subprocess.run(["umount", "-l", str(home)], check=False)


def test_full_home_fails_the_run_naming_the_file_and_the_next_run_works(
    tmp_path: Path, small_home: Path
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / ".conveyor.yml").write_text(SPAM)
    full = _conveyor(project, small_home, "run")
    shown = json.loads(_conveyor(project, small_home, "runs", "--json").stdout)
    for logs in small_home.glob("runs/*/logs"):  # the user frees space
        shutil.rmtree(logs)
    (project / ".conveyor.yml").write_text(SMALL)
    after = _conveyor(project, small_home, "run")
    assert full.returncode == 1, full.stderr[-2000:]
    assert "Traceback" not in full.stdout + full.stderr
    run_id = shown[0]["run_id"]
    path = small_home / "runs" / run_id / "logs" / "spam.jsonl"
    # Whichever filled first: the job's log file, or the database next to it.
    log_full = f"{path}: cannot write the job's log (No space left on device)"
    db_full = f"{small_home / 'conveyor.db'}: cannot save"
    assert log_full in full.stdout or (db_full in full.stdout and "disk is full" in full.stdout)
    assert shown[0]["status"] == "failed"
    assert (after.returncode, "Traceback" in after.stderr) == (0, False), after.stderr[-2000:]


def _record(n: int) -> LogRecord:
    return LogRecord(datetime.now(UTC), "r1", "spam", "s1", Stream.STDOUT, n, "x" * 100)


def test_log_sink_on_a_full_file_raises_store_error_naming_it_and_frees_its_reserve(
    tmp_path: Path,
) -> None:
    path = job_log_path(tmp_path, "spam")
    path.parent.mkdir(parents=True)
    path.symlink_to("/dev/full")  # every write: ENOSPC
    sink = RunLogs(tmp_path)
    sink.write_many([_record(1)])  # buffered
    reserve = path.parent / ".reserve"
    assert reserve.stat().st_size == RESERVE_BYTES
    with pytest.raises(StoreError) as caught:
        for n in range(2, 20_000):  # past the buffer
            sink.write_many([_record(n)])
    with pytest.raises(StoreError):  # broken for good
        sink.write_many([_record(1)])
    sink.close()  # never raises
    assert str(caught.value).startswith(f"{path}: cannot write the job's log (No space left")
    assert not reserve.exists()


def test_log_sink_close_removes_its_reserve(tmp_path: Path) -> None:
    sink = RunLogs(tmp_path)
    sink.write_many([_record(1)])
    sink.close()
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == ["spam.jsonl"]
