"""One RunStore conformance suite, run against SqlRunStore (stdlib sqlite3 and SQLAlchemy on
SQLite in tmp_path, PostgreSQL) and the in-memory fake, so the fake other tests rely on
behaves like the real store. One section per concern protocol of store.base (RunRecords,
ProcessBook + ProcessRecords, Deliveries, MonitorSnapshots, MonitorHistory); each test names
the protocol it exercises in its parameter's type. Log files: test_log_conformance.py."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from conveyor.errors import StoreError
from conveyor.model import EventKind, JobRecord, RunRecord, Status, StepRecord
from conveyor.store import open_store, open_store_url
from conveyor.store.base import (
    BodySeen,
    Deliveries,
    HistoryRecord,
    LiveProcess,
    MonitorHistory,
    MonitorSnapshot,
    MonitorSnapshots,
    ProcessRecords,
    RunRecords,
    RunStore,
)
from tests.fakes.memory_store import MemoryRunStore

T0 = datetime(2026, 11, 23, 12, 0, 0, 123000, tzinfo=UTC)


@pytest.fixture(params=["sql", "sqlite-engine", "memory", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunStore]:
    if request.param == "sqlite-engine":  # "sql" is stdlib sqlite3; this is SQLAlchemy's
        (tmp_path / "home").mkdir()
        engine_store = open_store_url(f"sqlite:///{tmp_path / 'home' / 'conveyor.db'}")
        yield engine_store
        engine_store.close()
        return
    if request.param == "postgres":  # a new database; tests/postgres.py closes the store
        yield request.getfixturevalue("postgres_store")
        return
    opened: RunStore = open_store(tmp_path / "home") if request.param == "sql" else MemoryRunStore()
    yield opened
    opened.close()


def make_run(run_id: str, **changes: object) -> RunRecord:
    fields: dict[str, object] = {
        "run_id": run_id,
        "repo": "acme/app",
        "ref": "main",
        "sha": "0" * 40,
        "event": EventKind.PUSH,
        "status": Status.PENDING,
        "created_at": T0,
        "pipeline_name": "demo",
        "trigger": {"kind": "push", "variables": {"A": "1"}},
    }
    fields.update(changes)
    return RunRecord(**fields)  # type: ignore[arg-type]


def make_job(name: str, attempt: int = 1, status: Status = Status.RUNNING) -> JobRecord:
    return JobRecord(
        name=name,
        stage="test",
        status=status,
        attempt=attempt,
        started_at=T0,
        needs=("build",),
        steps=(StepRecord("pytest", status, exit_code=None, started_at=T0),),
    )


# ---------------------------------------------------------------- RunRecords


def test_store_create_run_numbers_from_one(store: RunRecords) -> None:
    numbers = [store.create_run(make_run(f"r{i}")).number for i in range(3)]
    assert numbers == [1, 2, 3]


def test_store_get_run_round_trips_fields(store: RunRecords) -> None:
    store.create_run(make_run("r1", reason="why", started_at=T0))
    run = store.get_run("r1")
    assert run is not None
    assert make_run("r1", reason="why", started_at=T0, number=1) == run
    assert run.created_at.tzinfo is not None


def test_store_get_run_unknown_is_none(store: RunRecords) -> None:
    assert store.get_run("missing") is None


def test_store_create_run_twice_raises(store: RunRecords) -> None:
    store.create_run(make_run("r1"))
    with pytest.raises(StoreError, match="r1 already exists"):
        store.create_run(make_run("r1"))


def test_store_update_run_changes_only_given_fields(store: RunRecords) -> None:
    store.create_run(make_run("r1", reason="queued"))
    later = T0 + timedelta(seconds=90)
    store.update_run("r1", status=Status.SUCCESS, finished_at=later)
    run = store.get_run("r1")
    assert run is not None
    assert (Status.SUCCESS, later, "queued", None) == (
        run.status,
        run.finished_at,
        run.reason,
        run.started_at,
    )


def test_store_update_run_stores_the_pipeline_name(store: RunRecords) -> None:
    store.create_run(make_run("r1", pipeline_name=""))
    store.update_run("r1", status=Status.RUNNING, pipeline_name="build & test")
    store.update_run("r1", status=Status.SUCCESS)
    run = store.get_run("r1")
    assert run is not None
    assert (run.pipeline_name, run.status) == ("build & test", Status.SUCCESS)


def test_store_reopen_run_clears_finished_time_and_reason(store: RunRecords) -> None:
    store.create_run(make_run("r1", started_at=T0, pipeline_name="ci"))
    store.update_run("r1", status=Status.FAILED, finished_at=T0, reason="job build failed")
    store.reopen_run("r1", status=Status.PENDING)
    run = store.get_run("r1")
    assert run is not None
    assert (run.status, run.finished_at, run.reason, run.started_at, run.pipeline_name) == (
        Status.PENDING,
        None,
        None,
        T0,
        "ci",
    )


def test_store_reopen_run_of_unknown_run_changes_nothing(store: RunRecords) -> None:
    store.create_run(make_run("r1"))
    store.update_run("missing", status=Status.RUNNING)
    store.reopen_run("missing", status=Status.PENDING)
    assert store.get_run("missing") is None
    assert [r.run_id for r in store.list_runs()] == ["r1"]


def test_store_save_job_keeps_every_attempt(store: RunRecords) -> None:
    store.create_run(make_run("r1"))
    store.save_job("r1", make_job("test [PY=3.12]", 1, Status.FAILED))
    store.save_job("r1", make_job("test [PY=3.12]", 2, Status.SUCCESS))
    attempts = store.job_attempts("r1", "test [PY=3.12]")
    assert [(j.attempt, j.status) for j in attempts] == [(1, Status.FAILED), (2, Status.SUCCESS)]


def test_store_save_job_upserts_same_attempt(store: RunRecords) -> None:
    store.create_run(make_run("r1"))
    store.save_job("r1", make_job("build", 1, Status.RUNNING))
    store.save_job("r1", make_job("build", 1, Status.SUCCESS))
    assert [j.status for j in store.job_attempts("r1", "build")] == [Status.SUCCESS]


def test_store_get_run_shows_latest_attempt_in_insertion_order(store: RunRecords) -> None:
    store.create_run(make_run("r1"))
    store.save_job("r1", make_job("zeta", 1, Status.FAILED))
    store.save_job("r1", make_job("alpha", 1))
    store.save_job("r1", make_job("zeta", 2))
    run = store.get_run("r1")
    assert run is not None
    assert [(j.name, j.attempt) for j in run.jobs] == [("zeta", 2), ("alpha", 1)]


def test_store_job_round_trips_steps_and_needs(store: RunRecords) -> None:
    store.create_run(make_run("r1"))
    job = make_job("build")
    store.save_job("r1", job)
    run = store.get_run("r1")
    assert run is not None
    assert (job,) == run.jobs


def test_store_save_job_of_unknown_run_says_the_run_does_not_exist(store: RunRecords) -> None:
    with pytest.raises(StoreError) as caught:
        store.save_job("missing", make_job("build"))
    message = str(caught.value)
    assert "cannot save job 'build' of run missing: run missing does not exist" in message
    assert "already exists" not in message


def test_store_list_runs_newest_first_with_filters(store: RunRecords) -> None:
    store.create_run(make_run("r1"))
    store.create_run(make_run("r2", ref="dev", status=Status.FAILED))
    store.create_run(make_run("r3"))
    assert [r.run_id for r in store.list_runs()] == ["r3", "r2", "r1"]
    assert [r.run_id for r in store.list_runs(ref="main")] == ["r3", "r1"]
    assert [r.run_id for r in store.list_runs(status=Status.FAILED)] == ["r2"]
    assert [r.run_id for r in store.list_runs(limit=1, offset=1)] == ["r2"]
    assert list(store.list_runs(repo="other/repo")) == []


def test_store_list_runs_loads_no_jobs(store: RunRecords) -> None:
    store.create_run(make_run("r1"))
    store.save_job("r1", make_job("build"))
    assert [r.jobs for r in store.list_runs()] == [()]


def test_store_runs_with_status_oldest_first_with_trigger(store: RunRecords) -> None:
    store.create_run(make_run("r1", status=Status.RUNNING))
    store.create_run(make_run("r2", status=Status.SUCCESS))
    store.create_run(make_run("r3", status=Status.PENDING))
    found = store.runs_with_status([Status.PENDING, Status.RUNNING])
    assert [r.run_id for r in found] == ["r1", "r3"]
    assert found[0].trigger == {"kind": "push", "variables": {"A": "1"}}


def test_store_cancel_flag(store: RunRecords) -> None:
    store.create_run(make_run("r1"))
    assert not store.is_cancel_requested("r1")
    assert store.request_cancel("r1")
    assert store.is_cancel_requested("r1")
    assert not store.request_cancel("missing")
    assert not store.is_cancel_requested("missing")


# ---------------------------------------------------------------- ProcessRecords
# (they need a stored run: typed RunStore, exercising the ProcessRecords methods)


def test_store_orphaned_runs_lists_claimed_running_runs(store: RunStore) -> None:
    store.create_run(make_run("r1", status=Status.RUNNING))
    store.create_run(make_run("r2", status=Status.RUNNING))
    store.create_run(make_run("r3", status=Status.SUCCESS))
    store.claim_run("r1", owner_pid=4242, owner_started_ticks=987654321)
    store.claim_run("r3", owner_pid=4243, owner_started_ticks=1)
    assert store.orphaned_runs() == [("r1", 4242, 987654321)]


def test_store_processes_added_listed_removed(store: RunStore) -> None:
    store.create_run(make_run("r1"))
    store.add_process(LiveProcess("r1", "build", 300, 11))
    store.add_process(LiveProcess("r1", "test", 200, 12))
    assert [p.pgid for p in store.processes("r1")] == [200, 300]
    store.remove_process("r1", 200)
    assert [LiveProcess("r1", "build", 300, 11)] == store.processes("r1")
    store.remove_process("r1", 999)
    assert store.processes("r2") == []


def test_store_add_process_of_unknown_run_says_the_run_does_not_exist(
    store: ProcessRecords,
) -> None:
    with pytest.raises(StoreError) as caught:
        store.add_process(LiveProcess("r9", "build", 300, 11))
    assert "cannot record process group 300 of run r9: run r9 does not exist" in str(caught.value)
    assert store.processes("r9") == []


def test_store_save_job_and_processes_writes_the_batch(store: RunStore) -> None:
    store.create_run(make_run("r1"))
    store.add_process(LiveProcess("r1", "build", 77, 5))
    done = make_job("build", status=Status.SUCCESS)
    store.save_job_and_processes("r1", done, add=LiveProcess("r1", "build", 78, 6), remove=[77])
    run = store.get_run("r1")
    assert run is not None
    assert (run.jobs, store.processes("r1")) == ((done,), [LiveProcess("r1", "build", 78, 6)])


def test_store_save_job_and_processes_without_a_job_records_only_groups(
    store: RunStore,
) -> None:
    store.create_run(make_run("r1"))
    store.save_job_and_processes("r1", None, add=LiveProcess("r1", "build", 77, 5))
    store.save_job_and_processes("r1", None, add=LiveProcess("r1", "build", 77, 8))  # reused
    assert store.processes("r1") == [LiveProcess("r1", "build", 77, 8)]
    store.save_job_and_processes("r1", None, remove=[77, 99])
    run = store.get_run("r1")
    assert run is not None
    assert (run.jobs, store.processes("r1")) == ((), [])


def test_store_save_job_and_processes_of_unknown_run_writes_nothing(
    store: ProcessRecords,
) -> None:
    with pytest.raises(StoreError) as caught:
        store.save_job_and_processes(
            "r9", make_job("build"), add=LiveProcess("r9", "build", 300, 11)
        )
    assert "cannot save job 'build' of run r9: run r9 does not exist" in str(caught.value)
    assert store.processes("r9") == []


# ---------------------------------------------------------------- Deliveries


def test_store_claim_delivery_returns_first_run(store: Deliveries) -> None:
    assert store.claim_delivery("d-1", "r1") is None
    assert store.claim_delivery("d-1", "r2") == "r1"
    assert store.claim_delivery("d-2", "r2") is None


def test_store_delivered_run_is_stored_numbered_and_deduplicated(store: RunStore) -> None:
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


def test_store_delivered_run_keeps_its_first_job_records(store: RunStore) -> None:
    assert store.create_delivered_run(make_run("r1", jobs=(make_job("build"),)), "d") is None
    run = store.get_run("r1")
    assert run is not None
    assert [j.name for j in run.jobs] == ["build"]


def test_store_delivered_runs_in_one_batch(store: RunStore) -> None:
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


def _body(digest: str, window_s: float, now: datetime = T0) -> BodySeen:
    return BodySeen(digest, since=now - timedelta(seconds=window_s))


def test_store_same_body_under_a_new_delivery_id_is_a_duplicate(store: RunStore) -> None:
    body = _body("github:sha256:aa", 3600)
    assert store.create_delivered_run(make_run("r1"), "github:d-1", body=body) is None
    assert store.create_delivered_run(make_run("r2"), "github:d-2", body=body) == "r1"
    assert store.get_run("r2") is None
    # a new id whose body was seen answers the body's run, and records nothing
    assert store.claim_delivery("github:d-2", "r9") is None


def test_store_same_body_after_its_window_makes_a_new_run(store: RunStore) -> None:
    assert store.create_delivered_run(make_run("r1"), "d-1", body=_body("b", 60)) is None
    later = T0 + timedelta(seconds=61)
    again = make_run("r2", created_at=later)
    assert store.create_delivered_run(again, "d-2", body=_body("b", 60, later)) is None
    third = make_run("r3", created_at=later + timedelta(seconds=1))
    assert store.create_delivered_run(third, "d-3", body=_body("b", 60, later)) == "r2"


def test_store_other_body_or_no_body_is_not_a_duplicate(store: RunStore) -> None:
    assert store.create_delivered_run(make_run("r1"), "d-1", body=_body("b1", 60)) is None
    assert store.create_delivered_run(make_run("r2"), "d-2", body=_body("b2", 60)) is None
    assert store.create_delivered_run(make_run("r3"), "d-3") is None


def test_store_delivered_runs_batch_deduplicates_bodies(store: RunStore) -> None:
    assert store.create_delivered_run(make_run("r1"), "d-1", body=_body("b1", 60)) is None
    batch = [
        (make_run("r2"), "d-2"),  # body b1: seen before the batch
        (make_run("r3"), "d-3"),  # body b2: new
        (make_run("r4"), "d-4"),  # body b2: seen earlier in the batch
        (make_run("r5"), "d-5"),  # no body given
    ]
    bodies = [_body("b1", 60), _body("b2", 60), _body("b2", 60)]
    assert store.create_delivered_runs(batch, bodies=bodies) == ["r1", None, "r3", None]
    assert [r.run_id for r in store.list_runs()] == ["r5", "r3", "r1"]


# ---------------------------------------------------------------- MonitorSnapshots


def test_store_snapshots_replace_by_key(store: MonitorSnapshots) -> None:
    first = MonitorSnapshot("gitlab:g/app@main", "gitlab", b'{"a":1}', T0)
    second = MonitorSnapshot("github:o/r@main", "github", b"{}", T0)
    newer = MonitorSnapshot("gitlab:g/app@main", "gitlab", b'{"a":2}', T0 + timedelta(1))
    store.save_snapshots([first, second])
    store.save_snapshots([newer])
    store.save_snapshots([])
    assert [second, newer] == store.load_snapshots()


# ---------------------------------------------------------------- MonitorHistory


def make_history(key: str, pipeline_id: int, **changes: object) -> HistoryRecord:
    fields: dict[str, object] = {
        "key": key,
        "provider": "github",
        "pipeline_id": pipeline_id,
        "status": Status.SUCCESS,
        "sha": "a" * 40,
        "web_url": f"https://github.example/o/r/actions/runs/{pipeline_id}",
        "created_at": T0 + timedelta(minutes=pipeline_id % 1000),
        "started_at": T0 + timedelta(minutes=pipeline_id % 1000, seconds=5),
        "finished_at": None,
    }
    fields.update(changes)
    return HistoryRecord(**fields)  # type: ignore[arg-type]


def test_store_history_upserts_by_pipeline_and_keeps_the_newest_per_key(
    store: MonitorHistory,
) -> None:
    big = 2**40 + 7  # GitHub run ids exceed 32 bits
    assert store.load_history() == []
    store.save_history([make_history("o/r@main", n) for n in (1, 2, 3)], keep=3)
    store.save_history([make_history("g/app@dev", big, provider="gitlab", sha=None)], keep=3)
    finished = make_history(
        "o/r@main", 3, status=Status.FAILED, finished_at=T0 + timedelta(hours=1)
    )
    # A changed pipeline replaces its record (the last of a repeated one wins); a new one
    # pushes the oldest of its key out; the other key is not trimmed by this write.
    store.save_history([make_history("o/r@main", 4, status=Status.RUNNING), finished], keep=3)
    store.save_history([make_history("o/r@main", 4), make_history("o/r@main", 4)], keep=3)
    store.save_history([], keep=1)
    assert [
        make_history("g/app@dev", big, provider="gitlab", sha=None),
        make_history("o/r@main", 4),
        finished,
        make_history("o/r@main", 2),
    ] == store.load_history()
    store.save_history([make_history("o/r@main", 5)], keep=1)
    assert [big, 5] == [r.pipeline_id for r in store.load_history()]
