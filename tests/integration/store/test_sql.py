"""SqlRunStore on real SQLite files: migrations, schema, concurrency, errors, home layout."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from conveyor.errors import StoreError
from conveyor.model import EventKind, RunRecord, Status
from conveyor.store import open_store, open_store_url
from conveyor.store.base import LiveProcess
from conveyor.store.migrations import HEAD_REVISION, SCRIPT_LOCATION
from conveyor.store.schema import metadata


def test_open_store_creates_home_with_gitignore(tmp_path: Path) -> None:
    open_store(tmp_path / "a" / ".conveyor").close()
    assert (tmp_path / "a" / ".conveyor" / ".gitignore").read_text() == "*\n"


def test_open_store_migrates_fresh_database_to_head(tmp_path: Path) -> None:
    open_store(tmp_path).close()
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'conveyor.db'}")
    with engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == HEAD_REVISION
        mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
    engine.dispose()
    assert mode == "wal"


def test_migrations_head_is_head_revision() -> None:
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD_REVISION


def test_migrated_schema_equals_metadata(tmp_path: Path) -> None:
    open_store(tmp_path).close()
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'conveyor.db'}")
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, metadata)
    engine.dispose()
    assert diff == []


def test_open_store_skips_alembic_when_up_to_date(tmp_path: Path) -> None:
    open_store(tmp_path).close()
    code = (
        "import sys; from pathlib import Path; from conveyor.store import open_store; "
        f"open_store(Path({str(tmp_path)!r})).close(); print('alembic' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_store_returns_aware_utc_times_for_other_zones(tmp_path: Path) -> None:
    from datetime import timedelta, timezone

    store = open_store(tmp_path)
    local = datetime(2026, 11, 23, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    store.create_run(
        RunRecord("r1", "x", "main", "s", EventKind.PUSH, Status.PENDING, created_at=local)
    )
    run = store.get_run("r1")
    store.close()
    assert run is not None
    assert datetime(2026, 11, 23, 12, 0, tzinfo=UTC) == run.created_at
    assert run.created_at.tzinfo == UTC


_CREATE_RUNS = """
import sys
from datetime import UTC, datetime
from pathlib import Path
from conveyor.model import EventKind, RunRecord, Status
from conveyor.store import open_store
store = open_store(Path(sys.argv[1]))
for i in range(15):
    run = RunRecord(f"{sys.argv[2]}-{i}", "x", "main", "s", EventKind.PUSH, Status.RUNNING,
                    created_at=datetime.now(UTC))
    store.create_run(run)
store.close()
"""


def test_two_processes_create_runs_at_once(tmp_path: Path) -> None:
    # Both start on a fresh folder: migration and numbering must both be race-free.
    children = [
        subprocess.Popen([sys.executable, "-c", _CREATE_RUNS, str(tmp_path), name])
        for name in ("a", "b")
    ]
    assert [child.wait(timeout=30) for child in children] == [0, 0]
    store = open_store(tmp_path)
    found = store.list_runs(limit=100)
    store.close()
    assert len(found) == 30
    assert list(range(30, 0, -1)) == [run.number for run in found]


def test_open_store_on_garbage_file_raises_store_error(tmp_path: Path) -> None:
    (tmp_path / "conveyor.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match=r"conveyor\.db: cannot migrate the run store"):
        open_store(tmp_path)


@pytest.mark.parametrize("opener", ["stdlib", "sqlalchemy"])
def test_process_of_an_unknown_run_is_reported_as_that_run_missing(
    tmp_path: Path, opener: str
) -> None:
    if opener == "stdlib":
        store = open_store(tmp_path)
    else:
        store = open_store_url(f"sqlite:///{tmp_path / 'conveyor.db'}")
    try:
        with pytest.raises(StoreError) as caught:
            store.add_process(LiveProcess("r9", "build", 300, 11))
    finally:
        store.close()
    assert str(caught.value) == (
        f"{tmp_path / 'conveyor.db'}: cannot record process group 300 of run r9: "
        "run r9 does not exist (create it first)"
    )


def test_store_reports_locked_database(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    holder = sa.create_engine(f"sqlite:///{tmp_path / 'conveyor.db'}", connect_args={"timeout": 0})
    raw = holder.raw_connection()
    raw.driver_connection.isolation_level = None  # type: ignore[union-attr]
    raw.driver_connection.execute("BEGIN EXCLUSIVE")  # type: ignore[union-attr]
    try:
        fast = open_store_url(f"sqlite:///{tmp_path / 'conveyor.db'}", busy_timeout_s=0.05)
        with pytest.raises(StoreError, match="database is locked"):
            fast.request_cancel("r1")
        fast.close()
    finally:
        raw.driver_connection.execute("ROLLBACK")  # type: ignore[union-attr]
        raw.close()
        holder.dispose()
        store.close()


def test_open_store_url_rejects_bad_url() -> None:
    with pytest.raises(StoreError, match="not a database URL"):
        open_store_url("::not a url::")


def test_open_store_url_with_unknown_driver_names_no_password() -> None:
    with pytest.raises(StoreError, match="cannot open the run store") as caught:
        open_store_url("postgresql+nosuchdriver://app:hunter2secret@127.0.0.1:1/db")
    assert "hunter2secret" not in str(caught.value)
    assert "nosuchdriver" in str(caught.value)  # says what to fix
