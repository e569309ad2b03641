"""The SQL run store on a real PostgreSQL server (tests/postgres.py), beyond the conformance
suite: the migrated schema, several nodes writing at once, times, bytes, and errors.

Each test gets a new database; "two nodes" are two stores (two engines, two pools) on it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from threading import Barrier
from typing import TypeVar

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext

from conveyor.errors import StoreError
from conveyor.model import JobRecord, Status
from conveyor.store import open_store_url
from conveyor.store.base import LiveProcess, MonitorSnapshot
from conveyor.store.enginedb import NUMBERING_LOCK_KEY
from conveyor.store.migrations import HEAD_REVISION, SCRIPT_LOCATION
from conveyor.store.schema import metadata
from conveyor.store.sql import SqlRunStore
from tests.integration.store.test_conformance import T0, make_run
from tests.postgres import PostgresServer

Result = TypeVar("Result")
KOLKATA = timezone(timedelta(hours=5, minutes=30))


@pytest.fixture
def other_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A second new database on the same server."""
    name = postgres_server.create_database()
    yield postgres_server.url(name)
    postgres_server.drop_database(name)


@pytest.fixture
def two_nodes(postgres_url: str) -> Iterator[tuple[SqlRunStore, SqlRunStore]]:
    """Two stores on one database, as two conveyor servers would open it."""
    first, second = open_store_url(postgres_url), open_store_url(postgres_url)
    yield first, second
    first.close()
    second.close()


def run_at_once(work: Callable[[int], Result], count: int = 2) -> list[Result]:
    """`work(0)`, `work(1)`, … in as many threads, released together by a barrier."""
    barrier = Barrier(count, timeout=10)

    def start(index: int) -> Result:
        barrier.wait()
        return work(index)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(start, range(count)))


def upgrade_with_alembic(url: str) -> None:
    """`alembic upgrade head` through the store's own env.py."""
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        config = Config()
        config.set_main_option("script_location", str(SCRIPT_LOCATION))
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    engine.dispose()


def schema_of(url: str) -> tuple[dict[str, object], list[tuple[str]]]:
    """Every table's columns, keys and indexes as PostgreSQL reports them; the revision rows."""
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        inspector = sa.inspect(connection)
        tables: dict[str, object] = {}
        for name in sorted(inspector.get_table_names()):
            tables[name] = (
                [
                    (c["name"], str(c["type"]), c["nullable"], c["default"])
                    for c in inspector.get_columns(name)
                ],
                inspector.get_pk_constraint(name),
                sorted(inspector.get_foreign_keys(name), key=lambda k: str(k["name"])),
                sorted(inspector.get_indexes(name), key=lambda i: str(i["name"])),
                sorted(inspector.get_unique_constraints(name), key=lambda u: str(u["name"])),
            )
        versions = connection.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    engine.dispose()
    return tables, [tuple(row) for row in versions]


def differences_from_metadata(url: str) -> list[object]:
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, metadata)
    engine.dispose()
    return list(diff)


def test_postgres_alembic_upgrade_head_builds_exactly_the_metadata(postgres_url: str) -> None:
    upgrade_with_alembic(postgres_url)
    assert differences_from_metadata(postgres_url) == []


def test_postgres_new_store_schema_is_what_alembic_upgrade_head_builds(
    postgres_url: str, other_url: str
) -> None:
    open_store_url(postgres_url).close()
    upgrade_with_alembic(other_url)
    direct, migrated = schema_of(postgres_url), schema_of(other_url)
    assert direct == migrated
    assert set(direct[0]) == {*metadata.tables, "alembic_version"}
    assert direct[1] == [(HEAD_REVISION,)]
    assert differences_from_metadata(postgres_url) == []


def test_postgres_two_nodes_migrate_a_new_database_at_once(postgres_url: str) -> None:
    stores = run_at_once(lambda _: open_store_url(postgres_url))
    try:
        stores[0].create_run(make_run("r1"))
        assert stores[1].get_run("r1") == make_run("r1", number=1)
    finally:
        for store in stores:
            store.close()
    assert schema_of(postgres_url)[1] == [(HEAD_REVISION,)]


def test_postgres_two_writers_get_forty_distinct_run_numbers(
    two_nodes: tuple[SqlRunStore, SqlRunStore], postgres_server: PostgresServer
) -> None:
    def create_twenty(node: int) -> list[int]:
        return [two_nodes[node].create_run(make_run(f"n{node}-{i}")).number for i in range(20)]

    log_start = postgres_server.log_size()
    numbers = run_at_once(create_twenty)
    # Serial numbering: no insert met a number the other node had taken (each such
    # collision is a "duplicate key" ERROR in the server log and a retry in the store).
    assert "duplicate key" not in postgres_server.log_since(log_start)
    assert sorted(numbers[0] + numbers[1]) == list(range(1, 41))
    assert all(mine == sorted(mine) for mine in numbers)  # each writer's runs in its order
    stored = {run.run_id: run.number for run in two_nodes[1].list_runs(limit=100)}
    assert stored == {f"n{node}-{i}": numbers[node][i] for node in (0, 1) for i in range(20)}


def test_postgres_two_intakes_number_sixty_deliveries_without_a_retry(
    two_nodes: tuple[SqlRunStore, SqlRunStore], postgres_server: PostgresServer
) -> None:
    def deliver_ten_twice(node: int) -> None:
        store = two_nodes[node]
        for i in range(10):
            assert store.create_delivered_run(make_run(f"n{node}-{i}"), f"d{node}-{i}") is None
            batch = [
                (make_run(f"n{node}-b{i}"), f"d{node}-b{i}"),
                (make_run(f"x{node}-{i}"), f"dx{node}-{i}"),
            ]
            assert store.create_delivered_runs(batch) == [None, None]

    log_start = postgres_server.log_size()
    run_at_once(deliver_ten_twice)
    assert "duplicate key" not in postgres_server.log_since(log_start)
    numbers = sorted(run.number for run in two_nodes[0].list_runs(limit=100))
    assert numbers == list(range(1, 61))


def test_postgres_numbering_waits_for_the_numbering_lock(
    postgres_store: SqlRunStore, postgres_url: str
) -> None:
    engine = sa.create_engine(postgres_url)
    holder = engine.connect()
    try:
        holder.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": NUMBERING_LOCK_KEY})
        with ThreadPoolExecutor(1) as pool:
            created = pool.submit(postgres_store.create_run, make_run("r1"))
            wait_for_a_waiting_advisory_lock(holder)
            assert not created.done()
            holder.commit()  # releases the lock: the waiting insert goes on
            assert created.result(timeout=10).number == 1
    finally:
        holder.close()
        engine.dispose()


def wait_for_a_waiting_advisory_lock(connection: sa.Connection, deadline_s: float = 10.0) -> None:
    """Poll pg_locks (on another connection than `connection`'s transaction) until a session
    waits for an advisory lock."""
    query = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
    with connection.engine.connect() as watcher:
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            if watcher.exec_driver_sql(query).scalar_one():
                return
            watcher.rollback()  # a new snapshot of pg_locks for the next look
            time.sleep(0.01)
    raise AssertionError(f"no session waited for an advisory lock within {deadline_s} s")


def test_postgres_database_of_a_newer_conveyor_is_refused(postgres_url: str) -> None:
    open_store_url(postgres_url).close()
    engine = sa.create_engine(postgres_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    engine.dispose()
    with pytest.raises(StoreError) as caught:
        open_store_url(postgres_url)
    where = sa.make_url(postgres_url).render_as_string(hide_password=True)
    assert str(caught.value) == (
        f"{where}: the database is at schema revision '9999', which this conveyor does not "
        "know (a newer conveyor migrated it: upgrade conveyor)"
    )


def test_postgres_job_of_an_unknown_run_is_reported_as_that_run_missing(
    postgres_store: SqlRunStore,
) -> None:
    with pytest.raises(StoreError, match="run r9 does not exist") as caught:
        postgres_store.add_process(LiveProcess("r9", "build", 300, 11))
    assert "already exists" not in str(caught.value)


def test_postgres_concurrent_redeliveries_create_each_run_once(
    two_nodes: tuple[SqlRunStore, SqlRunStore],
) -> None:
    # Both nodes receive the same 20 webhook deliveries at the same time.
    def deliver(node: int) -> list[str | None]:
        store = two_nodes[node]
        return [store.create_delivered_run(make_run(f"n{node}-{i}"), f"d-{i}") for i in range(20)]

    answers = run_at_once(deliver)
    winners: list[str] = []
    for i, pair in enumerate(zip(*answers, strict=True)):
        # One node created the run (None); the other was told that node's run id.
        assert sorted(pair, key=str) in ([None, f"n0-{i}"], [None, f"n1-{i}"])
        winners.append(f"n{pair.index(None)}-{i}")
    runs = two_nodes[0].list_runs(limit=100)
    assert sorted(r.run_id for r in runs) == sorted(winners)
    assert sorted(r.number for r in runs) == list(range(1, 21))
    assert [two_nodes[1].claim_delivery(f"d-{i}", "late") for i in range(20)] == winners


def test_postgres_batched_deliveries_are_deduplicated(postgres_store: SqlRunStore) -> None:
    assert postgres_store.create_delivered_run(make_run("r1"), "d-1") is None
    items = [(make_run("r2"), "d-1"), (make_run("r3"), "d-2"), (make_run("r4"), "d-2")]
    assert postgres_store.create_delivered_runs(items) == ["r1", None, "r3"]
    assert [(r.run_id, r.number) for r in postgres_store.list_runs()] == [("r3", 2), ("r1", 1)]


def test_postgres_second_node_reads_the_first_nodes_writes(
    two_nodes: tuple[SqlRunStore, SqlRunStore],
) -> None:
    first, second = two_nodes
    first.create_run(make_run("r1"))
    assert second.get_run("r1") == make_run("r1", number=1)
    second.update_run("r1", status=Status.RUNNING, started_at=T0)
    assert second.request_cancel("r1") is True
    run = first.get_run("r1")
    assert run is not None
    assert (run.status, run.started_at) == (Status.RUNNING, T0)
    assert first.is_cancel_requested("r1") is True


def test_postgres_times_come_back_as_the_same_instant_in_utc(
    postgres_store: SqlRunStore, postgres_url: str
) -> None:
    # The server runs in Asia/Kolkata (tests/postgres.py); the caller in yet another zone.
    created = datetime(2026, 3, 1, 0, 15, 0, 123456, tzinfo=KOLKATA)
    job = JobRecord("build", "test", Status.SUCCESS, started_at=created, finished_at=created)
    postgres_store.create_run(make_run("r1", created_at=created, jobs=(job,)))
    postgres_store.update_run("r1", finished_at=created + timedelta(days=200))  # past DST
    run = postgres_store.get_run("r1")
    assert run is not None
    times = [run.created_at, run.finished_at, run.jobs[0].started_at, run.jobs[0].finished_at]
    assert times == [created, created + timedelta(days=200), created, created]
    assert all(t is not None and t.tzinfo is UTC for t in times)
    engine = sa.create_engine(postgres_url)
    with engine.connect() as connection:
        stored = connection.exec_driver_sql(
            "SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') FROM runs"
        ).scalar_one()
    engine.dispose()
    assert stored == "2026-02-28 18:45:00.123456"


def test_postgres_naive_time_is_refused(postgres_store: SqlRunStore) -> None:
    with pytest.raises(StoreError, match="naive datetime"):
        postgres_store.create_run(make_run("r1", created_at=datetime(2026, 1, 1)))  # noqa: DTZ001
    assert postgres_store.get_run("r1") is None


def test_postgres_snapshots_keep_every_byte(postgres_store: SqlRunStore) -> None:
    every_byte = bytes(range(256)) * 4096  # 1 MiB with NUL and high bytes
    old = MonitorSnapshot("gitlab:acme/app@main", "gitlab", b'{"old": true}', T0)
    empty = MonitorSnapshot("github:acme/web@main", "github", b"", T0)
    postgres_store.save_snapshots([old, empty])
    new = MonitorSnapshot("gitlab:acme/app@main", "gitlab", every_byte, T0 + timedelta(hours=1))
    postgres_store.save_snapshots([new])
    assert postgres_store.load_snapshots() == [empty, new]


def test_postgres_unreachable_server_is_a_store_error_without_the_password(
    tmp_path: Path,
) -> None:
    # No server listens in tmp_path: the connection fails at once.
    url = f"postgresql+psycopg://conveyor:pw-s3cret@/conveyor?host={tmp_path}"
    with pytest.raises(StoreError) as caught:
        open_store_url(url)
    message = str(caught.value)
    assert "pw-s3cret" not in message
    assert message.startswith("postgresql+psycopg://conveyor:***@/conveyor")
    assert "cannot migrate the run store" in message
