"""The store's schema on real SQLite files: a new store's direct create + stamp against
`alembic upgrade head`, and which path `open_store` takes for which database."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext

from conveyor.errors import StoreError
from conveyor.store import open_store, open_store_url
from conveyor.store.migrations import HEAD_REVISION, SCRIPT_LOCATION
from conveyor.store.schema import metadata

# Opens the store at argv[1] in a fresh interpreter; prints whether Alembic was imported.
_OPEN_AND_REPORT_ALEMBIC = (
    "import sys; from pathlib import Path; from conveyor.store import open_store; "
    "open_store(Path(sys.argv[1])).close(); print('alembic' in sys.modules)"
)


def upgrade_with_alembic(database: Path, revision: str = "head") -> None:
    """`alembic upgrade REVISION` through the store's own env.py, the pre-shortcut path."""
    engine = sa.create_engine(f"sqlite:///{database}")
    with engine.begin() as connection:
        config = Config()
        config.set_main_option("script_location", str(SCRIPT_LOCATION))
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    engine.dispose()


def schema_of(database: Path) -> tuple[list[tuple[str, str, str, str]], list[tuple[str]]]:
    """Every CREATE statement SQLite recorded, and the stamped revision rows."""
    with sqlite3.connect(database) as connection:
        objects = [
            # SQLite keeps a table's CREATE text and splices an added column into it
            # (`... NOT NULL, worker VARCHAR(255),` on one line): the same table, so the
            # layout of the text is not compared, only its words.
            (kind, name, table, " ".join(sql.split()) if sql else sql)
            for kind, name, table, sql in connection.execute(
                "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
            )
        ]
        versions = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    connection.close()
    return objects, versions


def open_in_subprocess(home: Path) -> bool:
    """Open the store at `home` in a new interpreter; True if that imported Alembic."""
    done = subprocess.run(
        [sys.executable, "-c", _OPEN_AND_REPORT_ALEMBIC, str(home)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.strip() == "True"


def test_new_store_schema_is_what_alembic_upgrade_head_builds(tmp_path: Path) -> None:
    open_store(tmp_path / "direct").close()
    (tmp_path / "alembic").mkdir()
    upgrade_with_alembic(tmp_path / "alembic" / "conveyor.db")
    direct = schema_of(tmp_path / "direct" / "conveyor.db")
    migrated = schema_of(tmp_path / "alembic" / "conveyor.db")
    assert direct == migrated
    names = {name for kind, name, _, _ in direct[0] if kind == "table"}
    assert names == {*metadata.tables, "alembic_version"}
    assert direct[1] == [(HEAD_REVISION,)]


def test_alembic_upgrade_head_builds_exactly_the_metadata(tmp_path: Path) -> None:
    upgrade_with_alembic(tmp_path / "conveyor.db")
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'conveyor.db'}")
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, metadata)
    engine.dispose()
    assert diff == []


def test_new_store_is_created_without_importing_alembic(tmp_path: Path) -> None:
    assert open_in_subprocess(tmp_path) is False
    with sqlite3.connect(tmp_path / "conveyor.db") as connection:
        mode = connection.execute("PRAGMA journal_mode").fetchone()
    connection.close()
    assert mode == ("wal",)
    assert schema_of(tmp_path / "conveyor.db")[1] == [(HEAD_REVISION,)]


def test_database_with_other_tables_is_migrated_by_alembic(tmp_path: Path) -> None:
    # Not empty, not at head (a shared database, or one from before the version table):
    # the direct path must not run; Alembic adds the schema and keeps what was there.
    with sqlite3.connect(tmp_path / "conveyor.db") as connection:
        connection.execute("CREATE TABLE other (x INTEGER)")
        connection.execute("INSERT INTO other VALUES (7)")
    connection.close()
    assert open_in_subprocess(tmp_path) is True
    objects, versions = schema_of(tmp_path / "conveyor.db")
    assert versions == [(HEAD_REVISION,)]
    assert {name for kind, name, _, _ in objects if kind == "table"} >= set(metadata.tables)
    with sqlite3.connect(tmp_path / "conveyor.db") as connection:
        assert connection.execute("SELECT x FROM other").fetchall() == [(7,)]
    connection.close()


def test_store_at_head_is_opened_without_alembic(tmp_path: Path) -> None:
    upgrade_with_alembic(tmp_path / "conveyor.db")
    assert open_in_subprocess(tmp_path) is False


@pytest.mark.parametrize("opener", ["stdlib", "sqlalchemy"])
def test_database_of_a_newer_conveyor_is_refused(tmp_path: Path, opener: str) -> None:
    database = tmp_path / "conveyor.db"
    open_store(tmp_path).close()
    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '9999'")
    connection.close()
    with pytest.raises(StoreError) as caught:
        if opener == "stdlib":
            open_store(tmp_path)
        else:
            open_store_url(f"sqlite:///{database}")
    assert str(caught.value) == (
        f"{database}: the database is at schema revision '9999', which this conveyor does not "
        "know (a newer conveyor migrated it: upgrade conveyor)"
    )
    assert schema_of(database)[1] == [("9999",)]  # left as the newer conveyor wrote it


def test_store_of_revision_0001_gains_the_job_worker(tmp_path: Path) -> None:
    # A store made by the conveyor before workers: its jobs keep their rows, with no worker.
    from conveyor.model import JobRecord, Status

    upgrade_with_alembic(tmp_path / "conveyor.db", "0001")
    with sqlite3.connect(tmp_path / "conveyor.db") as connection:
        connection.execute(
            "INSERT INTO runs (run_id, number, pipeline_name, repo, ref, sha, event, status, "
            "created_at, trigger_json) VALUES ('r1', 1, 'p', 'app', 'main', 'abc', 'push', "
            "'success', '2026-01-01 00:00:00.000000', '{}')"
        )
        connection.execute(
            "INSERT INTO jobs (run_id, name, attempt, stage, status, allow_failure, needs_json, "
            "steps_json) VALUES ('r1', 'old', 1, 'test', 'success', 0, '[]', '[]')"
        )
    connection.close()
    store = open_store(tmp_path)
    try:
        run = store.get_run("r1")
        assert run is not None and [(j.name, j.worker) for j in run.jobs] == [("old", None)]
        store.save_job("r1", JobRecord("new", "test", Status.SUCCESS, attempt=1, worker="local"))
        run = store.get_run("r1")
        assert run is not None and [(j.name, j.worker) for j in run.jobs] == [
            ("old", None),
            ("new", "local"),
        ]
    finally:
        store.close()
