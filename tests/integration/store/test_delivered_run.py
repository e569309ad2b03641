"""`create_delivered_run` (the webhook intake's one transaction) against SqlRunStore (SQLite
in tmp_path, PostgreSQL) and the in-memory fake: de-duplication, numbering, persistence."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.store import open_store
from conveyor.store.base import RunStore
from tests.fakes.memory_store import MemoryRunStore
from tests.integration.store.test_conformance import T0, make_job, make_run


@pytest.fixture(params=["sql", "memory", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunStore]:
    if request.param == "postgres":  # a new database; tests/postgres.py closes the store
        yield request.getfixturevalue("postgres_store")
        return
    opened: RunStore = open_store(tmp_path / "home") if request.param == "sql" else MemoryRunStore()
    yield opened
    opened.close()


def test_delivered_run_is_stored_numbered_and_deduplicated(store: RunStore) -> None:
    store.create_run(make_run("r0"))
    assert store.create_delivered_run(make_run("r1"), "github:d-1") is None
    assert store.create_delivered_run(make_run("r2"), "github:d-1") == "r1"
    assert store.create_delivered_run(make_run("r3"), "github:d-2") is None
    first = store.get_run("r1")
    assert first is not None
    assert (first.number, first.trigger, first.created_at) == (2, make_run("x").trigger, T0)
    assert store.get_run("r2") is None
    assert [r.run_id for r in store.list_runs()] == ["r3", "r1", "r0"]
    assert store.claim_delivery("github:d-2", "r9") == "r3"


def test_delivered_run_keeps_its_first_job_records(store: RunStore) -> None:
    assert store.create_delivered_run(make_run("r1", jobs=(make_job("build"),)), "d") is None
    run = store.get_run("r1")
    assert run is not None
    assert [j.name for j in run.jobs] == ["build"]


def test_delivered_run_survives_a_restart(tmp_path: Path) -> None:
    first = open_store(tmp_path / "home")
    assert first.create_delivered_run(make_run("r1"), "gitlab:u-1") is None
    first.close()
    again = open_store(tmp_path / "home")
    try:
        assert again.create_delivered_run(make_run("r2"), "gitlab:u-1") == "r1"
        assert again.get_run("r2") is None
    finally:
        again.close()


def test_delivered_runs_in_one_batch(store: RunStore) -> None:
    assert store.create_delivered_run(make_run("r1"), "d-1") is None
    batch = [
        (make_run("r2"), "d-2"),
        (make_run("r3"), "d-1"),  # seen before the batch
        (make_run("r4"), "d-2"),  # seen earlier in the batch
        (make_run("r5"), "d-3"),
    ]
    assert store.create_delivered_runs(batch) == [None, "r1", "r2", None]
    assert [(r.run_id, r.number) for r in store.list_runs()] == [("r5", 3), ("r2", 2), ("r1", 1)]
    assert store.create_delivered_runs([(make_run("r6"), "d-3")]) == ["r5"]
    assert store.create_delivered_runs([]) == []
