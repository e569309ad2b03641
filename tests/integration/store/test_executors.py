"""The SQL store's two executors on one SQLite file: stdlib sqlite3 (`open_store`) and
SQLAlchemy (`open_store_url`) store the same values, read what the other wrote, and report
driver failures with the same StoreError messages."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from conveyor.errors import StoreError
from conveyor.model import JobRecord, RunRecord, Status
from conveyor.store import open_store, open_store_url
from conveyor.store.base import LiveProcess, MonitorSnapshot
from conveyor.store.sql import SqlRunStore
from tests.integration.store.test_conformance import T0, make_job, make_run

TABLES = ("runs", "jobs", "processes", "deliveries", "monitor_snapshots")


def open_engine_store(home: Path) -> SqlRunStore:
    home.mkdir(parents=True, exist_ok=True)
    return open_store_url(f"sqlite:///{home / 'conveyor.db'}")


OPENERS: dict[str, Callable[[Path], SqlRunStore]] = {
    "stdlib": open_store,
    "sqlalchemy": open_engine_store,
}


def write_everything(store: SqlRunStore) -> None:
    """One of each write the store has, with fixed values."""
    store.create_run(make_run("r1", jobs=(make_job("build"), make_job("test"))))
    store.save_job("r1", replace(make_job("build", attempt=2), allow_failure=True, exit_code=3))
    store.update_run("r1", status=Status.RUNNING, started_at=T0 + timedelta(seconds=1))
    store.update_run("r1", reason="because", finished_at=T0 + timedelta(minutes=2, microseconds=7))
    store.claim_run("r1", owner_pid=4321, owner_started_ticks=2**40)
    store.request_cancel("r1")
    store.add_process(LiveProcess("r1", "build", pgid=77, started_ticks=2**41))
    store.save_job_and_processes(
        "r1",
        make_job("deploy", status=Status.SUCCESS),
        add=LiveProcess("r1", "deploy", 78, 5),
        remove=(77,),
    )
    assert store.create_delivered_run(make_run("r2"), "github:d-1") is None
    assert store.create_delivered_runs([(make_run("r3"), "d-2"), (make_run("r4"), "d-2")]) == [
        None,
        "r3",
    ]
    store.claim_delivery("gitlab:u-1", "r9")
    store.save_snapshots(
        [
            MonitorSnapshot("gitlab:a@main", "gitlab", b"\x00{}\xff", T0),
            MonitorSnapshot("github:b@dev", "github", b"[]", T0 + timedelta(hours=1)),
        ]
    )


def read_everything(store: SqlRunStore) -> dict[str, Any]:
    """Every read the store has, of what `write_everything` wrote."""
    return {
        "run": store.get_run("r1"),
        "attempts": store.job_attempts("r1", "build"),
        "list": store.list_runs(),
        "list_by_repo_status": store.list_runs(repo="acme/app", status=Status.PENDING, limit=2),
        "with_status": store.runs_with_status([Status.RUNNING, Status.PENDING]),
        "orphaned": store.orphaned_runs(),
        "cancel": store.is_cancel_requested("r1"),
        "processes": store.processes("r1"),
        "delivery": store.claim_delivery("github:d-1", "other"),
        "snapshots": store.load_snapshots(),
    }


def raw_rows(database: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Each table's rows as SQLite keeps them, with each value's storage class."""
    with sqlite3.connect(database) as connection:
        found = {}
        for table in TABLES:
            columns = [r[1] for r in connection.execute(f"PRAGMA table_info({table})")]
            typed = ", ".join(f'"{c}", typeof("{c}")' for c in columns)
            found[table] = connection.execute(
                f"SELECT {typed} FROM {table} ORDER BY rowid"  # noqa: S608  fixed names
            ).fetchall()
    connection.close()
    return found


def test_executors_store_identical_values(tmp_path: Path) -> None:
    for name, opener in OPENERS.items():
        store = opener(tmp_path / name)
        write_everything(store)
        store.close()
    stdlib, engine = (raw_rows(tmp_path / name / "conveyor.db") for name in OPENERS)
    assert engine == stdlib
    assert stdlib["runs"][0][18:20] == ("2026-11-23 12:00:00.123000", "text")


@pytest.mark.parametrize(("writer", "reader"), [("stdlib", "sqlalchemy"), ("sqlalchemy", "stdlib")])
def test_executors_read_what_the_other_wrote(tmp_path: Path, writer: str, reader: str) -> None:
    home = tmp_path / "home"
    first = OPENERS[writer](home)
    write_everything(first)
    expected = read_everything(first)
    first.close()
    second = OPENERS[reader](home)
    try:
        assert read_everything(second) == expected
    finally:
        second.close()
    assert expected["run"].jobs[0] == replace(
        make_job("build", attempt=2), allow_failure=True, exit_code=3
    )
    assert expected["snapshots"][1].data_json == b"\x00{}\xff"


def test_stdlib_store_reports_locked_database(tmp_path: Path) -> None:
    store = open_store(tmp_path, busy_timeout_s=0.05)
    holder = sqlite3.connect(tmp_path / "conveyor.db", timeout=0, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError, match=r"database is locked: cannot cancel run r1 \(another"):
            store.request_cancel("r1")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        store.close()


def test_stdlib_store_rejects_naive_datetime_as_store_error(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    try:
        with pytest.raises(StoreError, match="cannot create run r1: naive datetime"):
            store.create_run(make_run("r1", created_at=T0.replace(tzinfo=None)))
        assert store.list_runs() == []
    finally:
        store.close()


def test_stdlib_store_is_shared_by_threads(tmp_path: Path) -> None:
    # The server calls one store from its event loop and from worker threads at once.
    store = open_store(tmp_path)
    failures: list[Exception] = []

    def work(thread: int) -> None:
        try:
            for i in range(10):
                run = store.create_run(make_run(f"t{thread}-{i}"))
                assert store.get_run(run.run_id) == run
                store.save_job(run.run_id, JobRecord(name="j", stage="s", status=Status.SUCCESS))
        except (StoreError, AssertionError) as exc:  # collected, asserted below
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    try:
        assert failures == []
        numbers = sorted(run.number for run in store.list_runs(limit=100))
        assert numbers == list(range(1, 61))
    finally:
        store.close()


def test_stdlib_store_refuses_use_after_close(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.close()
    with pytest.raises(StoreError, match="the run store is closed"):
        store.list_runs()


def test_run_record_round_trip_keeps_microseconds(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    created = T0 + timedelta(microseconds=1)
    try:
        store.create_run(make_run("r1", created_at=created))
        run = store.get_run("r1")
    finally:
        store.close()
    assert run is not None
    assert (run.created_at, run.created_at.tzinfo) == (created, T0.tzinfo)
    assert isinstance(run, RunRecord)
