"""`SqlRunStore.get_run` keeps the records it read (`store.runcache`) only while nothing at
all was committed since: a write by another process shows at once."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from conveyor.model import EventKind, JobRecord, RunRecord, Status
from conveyor.store import open_store

WRITER = """
import sys
from datetime import UTC, datetime
from conveyor.model import JobRecord, Status
from conveyor.store import open_store
store = open_store(__import__("pathlib").Path(sys.argv[1]))
store.update_run(sys.argv[2], status=Status.SUCCESS, finished_at=datetime.now(UTC))
store.save_job(sys.argv[2], JobRecord(name="build", stage="test", status=Status.SUCCESS))
store.close()
"""


def test_get_run_sees_another_process_write_at_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = open_store(home)
    try:
        run = RunRecord(
            "r1",
            "acme/app",
            "main",
            "a" * 40,
            EventKind.PUSH,
            Status.RUNNING,
            created_at=datetime.now(UTC),
            jobs=(JobRecord(name="build", stage="test", status=Status.RUNNING),),
        )
        store.create_run(run)
        first, again = store.get_run("r1"), store.get_run("r1")
        subprocess.run([sys.executable, "-c", WRITER, str(home), "r1"], check=True)
        after = store.get_run("r1")
    finally:
        store.close()
    assert first is not None and again == first
    assert after is not None
    assert (after.status, [j.status for j in after.jobs]) == (Status.SUCCESS, [Status.SUCCESS])


def test_get_run_sees_its_own_writes(tmp_path: Path) -> None:
    store = open_store(tmp_path / "home")
    try:
        store.create_run(
            RunRecord(
                "r1",
                "acme/app",
                "main",
                "a" * 40,
                EventKind.PUSH,
                Status.PENDING,
                created_at=datetime.now(UTC),
            )
        )
        assert store.get_run("r1") is not None
        store.update_run("r1", status=Status.RUNNING, pipeline_name="demo")
        run = store.get_run("r1")
    finally:
        store.close()
    assert run is not None
    assert (run.status, run.pipeline_name) == (Status.RUNNING, "demo")
