"""Opening a run-store database through SQLAlchemy: engine set-up, SQLite pragmas,
migrations, driver errors. Used by `open_store_url` (any URL) and, for the embedded file, only
when it is behind the head revision (store.sqlitedb runs it otherwise, without SQLAlchemy).

SQLite runs in WAL mode with a busy timeout and foreign keys on; write transactions start
with `BEGIN IMMEDIATE` so two conveyor processes queue on the lock instead of failing a
read-to-write upgrade. `migrate` checks the recorded revision with one plain query. A
database without any table gets schema.py's metadata created directly and the head revision
stamped, as `alembic upgrade head` would leave it (a test compares the two schemas); Alembic
is imported only for a database that has tables and is behind; a revision no migration
file names (a newer conveyor migrated the database) is refused with a StoreError. Must not
know about runs or jobs (sql.py does); every driver exception leaves this package as a
StoreError.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from conveyor.errors import StoreError
from conveyor.store.executor import describe_failure, is_missing_reference
from conveyor.store.locks import hold_migration_lock
from conveyor.store.migrations import HEAD_REVISION, SCRIPT_LOCATION
from conveyor.store.schema import metadata

__all__ = [
    "BUSY_TIMEOUT_S",
    "IMMEDIATE",
    "bring_to_head",
    "create_store_engine",
    "current_revision",
    "describe_url",
    "migrate",
    "to_store_error",
]

BUSY_TIMEOUT_S = 30.0
# Execution option asking the `begin` hook for a write transaction (BEGIN IMMEDIATE).
IMMEDIATE = "conveyor_immediate"


def describe_url(url: sa.URL) -> str:
    """Where the store lives, for messages: the file for SQLite, the URL without password."""
    if url.get_backend_name() == "sqlite":
        return url.database or ":memory:"
    return url.render_as_string(hide_password=True)


def to_store_error(exc: sa.exc.SQLAlchemyError, where: str, action: str) -> StoreError:
    """A StoreError saying where, what and how to fix, without driver noise or secrets
    (IntegrityConflict for a broken key, MissingReference for a broken foreign key; the
    wording is `executor.describe_failure`)."""
    driver_error = getattr(exc, "orig", None)
    detail = str(driver_error or exc)
    is_integrity = isinstance(exc, sa.exc.IntegrityError)
    is_missing = is_integrity and is_missing_reference(driver_error)
    return describe_failure(detail, where, action, is_integrity=is_integrity, is_missing=is_missing)


def create_store_engine(url: sa.URL, *, busy_timeout_s: float = BUSY_TIMEOUT_S) -> Engine:
    """An engine for `url`; SQLite files get WAL, a busy timeout (how long a writer waits
    for another process's lock), foreign keys and explicit transaction control (pysqlite's
    own is bypassed)."""
    if url.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_pre_ping=True)
    engine = sa.create_engine(
        url,
        connect_args={"timeout": busy_timeout_s, "check_same_thread": False},
    )
    busy_ms = int(busy_timeout_s * 1000)

    def configure(dbapi_connection: Any, _record: Any) -> None:
        _configure_sqlite(dbapi_connection, busy_ms)

    event.listen(engine, "connect", configure)
    event.listen(engine, "begin", _begin_sqlite)
    return engine


def _configure_sqlite(dbapi_connection: Any, busy_ms: int) -> None:
    # Autocommit at the driver level; `_begin_sqlite` emits BEGIN itself.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _begin_sqlite(connection: Connection) -> None:
    immediate = connection.get_execution_options().get(IMMEDIATE, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def current_revision(connection: Connection) -> str | None:
    """The Alembic revision recorded in the database, or None for a fresh database."""
    if not sa.inspect(connection).has_table("alembic_version"):
        return None
    row = connection.exec_driver_sql("SELECT version_num FROM alembic_version").first()
    return None if row is None else str(row[0])


def migrate(engine: Engine) -> None:
    """Bring the schema to HEAD_REVISION. Cheap when it is already there; several processes
    opening a fresh store at once are serialised by a file lock (SQLite) or the write lock."""
    database = engine.url.database if engine.url.get_backend_name() == "sqlite" else None
    with hold_migration_lock(database or ""):
        bring_to_head(engine)


def bring_to_head(engine: Engine) -> None:
    """`migrate` for a caller that already holds the migration lock."""
    where = describe_url(engine.url)
    try:
        with engine.connect() as connection:
            if _read_revision(connection) == HEAD_REVISION:
                return
        with (
            engine.connect().execution_options(**{IMMEDIATE: True}) as connection,
            connection.begin(),
        ):
            if not sa.inspect(connection).get_table_names():
                _create_at_head(connection)
            elif (revision := current_revision(connection)) != HEAD_REVISION:
                _run_alembic_upgrade(connection, revision, where)
    except sa.exc.SQLAlchemyError as exc:
        # PostgreSQL has no BEGIN IMMEDIATE: another node may have migrated meanwhile.
        if not isinstance(exc, sa.exc.OperationalError) and _is_at_head(engine):
            return
        raise to_store_error(exc, where, "migrate the run store") from exc


def _is_at_head(engine: Engine) -> bool:
    try:
        with engine.connect() as connection:
            return _read_revision(connection) == HEAD_REVISION
    except sa.exc.SQLAlchemyError:
        return False


def _read_revision(connection: Connection) -> str | None:
    # The fast path: one query; a missing table means "not migrated yet".
    try:
        row = connection.exec_driver_sql("SELECT version_num FROM alembic_version").first()
    except sa.exc.OperationalError:
        connection.rollback()
        return None
    except sa.exc.ProgrammingError:
        connection.rollback()
        return None
    connection.rollback()
    return None if row is None else str(row[0])


def _create_at_head(connection: Connection) -> None:
    """A database without tables: create schema.py's tables and record HEAD_REVISION in
    a version table shaped exactly like Alembic's own, so later upgrades run from there.
    Milliseconds, where importing and running Alembic takes about 0.1 s."""
    metadata.create_all(connection, checkfirst=False)
    version = sa.Table(
        "alembic_version",
        sa.MetaData(),
        sa.Column("version_num", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
    )
    version.create(connection)
    connection.execute(version.insert().values(version_num=HEAD_REVISION))


def _run_alembic_upgrade(connection: Connection, revision: str | None, where: str) -> None:
    """`alembic upgrade head` from `revision`; a revision none of our migration files
    names (a newer conveyor's) is refused with a StoreError instead of Alembic's own."""
    # Imported here: Alembic costs tens of milliseconds and is needed once per schema change.
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.attributes["connection"] = connection
    known = {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}
    if revision is not None and revision not in known:
        raise StoreError(
            f"{where}: the database is at schema revision {revision!r}, which this conveyor "
            "does not know (a newer conveyor migrated it: upgrade conveyor)"
        )
    command.upgrade(config, "head")
