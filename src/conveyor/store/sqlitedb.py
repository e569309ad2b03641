"""SqliteDatabase: the store's `Database` over stdlib sqlite3, for the embedded SQLite file.

Runs the SQL that `python -m conveyor.store.compile_sqlite` compiled from
store/statements.py with SQLAlchemy's SQLite dialect (store/sqlite_sql.py), converting
values exactly as SQLAlchemy does on SQLite (datetimes as naive UTC text
`YYYY-MM-DD HH:MM:SS.ffffff`, booleans as 0/1, bytes as BLOB), so either executor reads
what the other wrote. Connections: WAL, a busy timeout, foreign keys on, autocommit at the
driver (`isolation_level=None`) with explicit `BEGIN` / `BEGIN IMMEDIATE`; a small pool
hands each transaction a connection no other thread is using (the server calls the store
from its event loop and from worker threads). `open_sqlite_database` creates a fresh file's
schema from the generated DDL and stamps the head revision; only a database behind head
imports SQLAlchemy and Alembic (`store.database.bring_to_head`). Must not import
SQLAlchemy otherwise, nor know about runs or jobs.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from conveyor.errors import StoreError
from conveyor.store.executor import Row, describe_failure, is_missing_reference
from conveyor.store.locks import hold_migration_lock
from conveyor.store.sqlite_sql import DDL, HEAD_REVISION, STATEMENTS

__all__ = ["SqliteDatabase", "open_sqlite_database"]


class _ConversionError(ValueError):
    """A value the column cannot take (a naive datetime)."""


def _bind_datetime(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise _ConversionError("naive datetime: the run store only takes aware UTC datetimes")
    u = value.astimezone(UTC)
    # SQLAlchemy's SQLite DATETIME storage format; fixed width, so text order is time order.
    return (
        f"{u.year:04d}-{u.month:02d}-{u.day:02d} "
        f"{u.hour:02d}:{u.minute:02d}:{u.second:02d}.{u.microsecond:06d}"
    )


def _read_datetime(value: Any) -> Any:
    return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)


def _bind_bool(value: Any) -> Any:
    return None if value is None else int(bool(value))


def _read_bool(value: Any) -> Any:
    return None if value is None else bool(value)


def _read_bytes(value: Any) -> Any:
    return None if value is None else bytes(value)


# The conversions named in store/sqlite_sql.py ("" = the driver's value as it is).
_BINDS: dict[str, Callable[[Any], Any]] = {"datetime": _bind_datetime, "bool": _bind_bool}
_READS: dict[str, Callable[[Any], Any]] = {
    "datetime": _read_datetime,
    "bool": _read_bool,
    "bytes": _read_bytes,
}


@dataclass(frozen=True, slots=True)
class _Plan:
    """A compiled statement ready to bind: where each expanding list goes, what converts."""

    sql: str
    params: tuple[tuple[str, Callable[[Any], Any] | None, str | None], ...]
    names: tuple[str, ...]
    reads: tuple[tuple[int, Callable[[Any], Any]], ...]

    def bind(self, values: Mapping[str, Any]) -> tuple[str, list[Any]]:
        sql, bound = self.sql, []
        for name, convert, marker in self.params:
            value = values[name]
            if marker is None:
                bound.append(value if convert is None else convert(value))
                continue
            items = list(value)
            # An empty list matches nothing, as SQLAlchemy's empty IN does.
            sql = sql.replace(marker, ", ".join("?" * len(items)) or "NULL", 1)
            bound.extend(items if convert is None else [convert(v) for v in items])
        return sql, bound

    def row(self, raw: Sequence[Any]) -> Row:
        values = list(raw)
        for index, convert in self.reads:
            values[index] = convert(values[index])
        return dict(zip(self.names, values, strict=True))


def _plan(name: str) -> _Plan:
    compiled = STATEMENTS[name]
    params = []
    for param, conversion in compiled.params:
        marker = f"__[POSTCOMPILE_{param}]"
        params.append((param, _BINDS.get(conversion), marker if marker in compiled.sql else None))
    return _Plan(
        sql=compiled.sql,
        params=tuple(params),
        names=tuple(column for column, _ in compiled.columns),
        reads=tuple((i, _READS[c]) for i, (_, c) in enumerate(compiled.columns) if c),
    )


_PLANS = {name: _plan(name) for name in STATEMENTS}


class _SqliteTx:
    """A transaction on one sqlite3 connection."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection
        self.rowcount = 0

    def execute(self, name: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        plan = _PLANS[name]
        sql, bound = plan.bind(params or {})
        cursor = self._connection.execute(sql, bound)
        self.rowcount = cursor.rowcount
        return [plan.row(raw) for raw in cursor.fetchall()] if plan.names else []

    def execute_many(self, name: str, params: Sequence[Mapping[str, Any]]) -> None:
        plan = _PLANS[name]
        if params:
            sql = plan.sql
            self._connection.executemany(sql, [plan.bind(p)[1] for p in params])


class SqliteDatabase:
    """A `Database` on one SQLite file. Build it with `open_sqlite_database`."""

    def __init__(self, path: str, *, busy_timeout_s: float) -> None:
        self.where = path
        self.local_reads = True  # WAL: a read never waits for a writer
        self.sqlite_path: str | None = path
        self._busy_timeout_s = busy_timeout_s
        self._lock = threading.Lock()
        self._idle: list[sqlite3.Connection] = []
        self._closed = False

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self.where,
            timeout=self._busy_timeout_s,
            isolation_level=None,  # autocommit at the driver: BEGIN is ours
            check_same_thread=False,  # pooled: one thread at a time, never two at once
        )
        try:
            connection.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_s * 1000)}")
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")
            connection.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error:
            connection.close()
            raise
        return connection

    def _acquire(self) -> sqlite3.Connection:
        with self._lock:
            if self._closed:
                raise StoreError(f"{self.where}: the run store is closed (open it again)")
            if self._idle:
                return self._idle.pop()
        return self._connect()

    def _release(self, connection: sqlite3.Connection) -> None:
        with self._lock:
            if not self._closed:
                self._idle.append(connection)
                return
        connection.close()

    @contextmanager
    def _transaction(self, begin: str, action: str) -> Iterator[_SqliteTx]:
        connection: sqlite3.Connection | None = None
        try:
            connection = self._acquire()
            connection.execute(begin)
            yield _SqliteTx(connection)
            connection.execute("COMMIT")
        except (sqlite3.Error, _ConversionError) as exc:
            _roll_back(connection)
            raise describe_failure(
                str(exc),
                self.where,
                action,
                is_integrity=isinstance(exc, sqlite3.IntegrityError),
                is_missing=is_missing_reference(exc),
            ) from exc
        except BaseException:
            _roll_back(connection)
            raise
        finally:
            if connection is not None:
                self._release(connection)

    def read(self, action: str) -> AbstractContextManager[_SqliteTx]:
        return self._transaction("BEGIN", action)

    def write(
        self, action: str, *, is_numbering: bool = False
    ) -> AbstractContextManager[_SqliteTx]:
        # BEGIN IMMEDIATE serialises every writer, numbering ones included.
        return self._transaction("BEGIN IMMEDIATE", action)

    def ensure_schema(self) -> bool:
        """Create a file without tables at head (DDL + stamp, one transaction); True when the
        database is at head afterwards, False when it has tables and is behind."""
        connection = self._acquire()
        try:
            if _read_revision(connection) == HEAD_REVISION:
                return True
            connection.execute("BEGIN IMMEDIATE")
            try:
                tables = connection.execute(
                    "SELECT name FROM sqlite_master "
                    "WHERE type = 'table' AND name NOT LIKE 'sqlite~_%' ESCAPE '~'"
                ).fetchall()
                if tables:
                    return _read_revision(connection) == HEAD_REVISION
                for statement in DDL:
                    connection.execute(statement)
                connection.execute(
                    "INSERT INTO alembic_version (version_num) VALUES (?)", (HEAD_REVISION,)
                )
                connection.execute("COMMIT")
            finally:
                _roll_back(connection)
            return True
        finally:
            self._release(connection)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


def _roll_back(connection: sqlite3.Connection | None) -> None:
    if connection is not None and connection.in_transaction:
        connection.execute("ROLLBACK")


def _read_revision(connection: sqlite3.Connection) -> str | None:
    try:
        row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError:  # no such table: a fresh file
        return None
    return None if row is None else str(row[0])


def open_sqlite_database(path: str, *, busy_timeout_s: float) -> SqliteDatabase:
    """The database at `path`, at the head revision: a fresh file gets the schema directly;
    a file behind head is upgraded by Alembic (the only case that imports SQLAlchemy)."""
    db = SqliteDatabase(path, busy_timeout_s=busy_timeout_s)
    try:
        with hold_migration_lock(path):
            if not db.ensure_schema():
                _upgrade_with_alembic(path, busy_timeout_s)
    except sqlite3.Error as exc:
        db.close()
        raise describe_failure(str(exc), path, "migrate the run store", is_integrity=False) from exc
    except BaseException:
        db.close()
        raise
    return db


def _upgrade_with_alembic(path: str, busy_timeout_s: float) -> None:
    # Imported here: SQLAlchemy and Alembic cost a quarter of a second and are needed once
    # per schema change. The caller holds the migration lock already.
    import sqlalchemy as sa

    from conveyor.store.database import bring_to_head, create_store_engine

    engine = create_store_engine(
        sa.URL.create("sqlite", database=path), busy_timeout_s=busy_timeout_s
    )
    try:
        bring_to_head(engine)
    finally:
        engine.dispose()
