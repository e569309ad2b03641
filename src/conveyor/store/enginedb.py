"""EngineDatabase: the store's `Database` over a SQLAlchemy engine (any URL: PostgreSQL for
several nodes, or a SQLite file given as a URL).

Runs store/statements.py's constructs by name; SQLAlchemy's types convert the values
(`schema.UtcDateTime` and the rest), and rows come back as mappings. Writes on SQLite begin
with `BEGIN IMMEDIATE` (the `database.IMMEDIATE` option). Driver exceptions leave as
StoreError through `database.to_store_error` (IntegrityConflict for a broken constraint).
On PostgreSQL a numbering write (`is_numbering`) first takes `pg_advisory_xact_lock` on
`NUMBERING_LOCK_KEY`: concurrent nodes then number runs one after another, and the retry
on a taken number (store.writes) stays only as the safety net. Must not know about runs or
jobs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from conveyor.store.database import IMMEDIATE, describe_url, to_store_error
from conveyor.store.executor import Row
from conveyor.store.statements import STATEMENTS

__all__ = ["NUMBERING_LOCK_KEY", "EngineDatabase"]

#: The advisory lock (a bigint, per database) held by each transaction that assigns run
#: numbers; released by PostgreSQL at commit or rollback, after the new rows are visible.
NUMBERING_LOCK_KEY = 0x636F6E7665796F72  # "conveyor" in ASCII
_TAKE_NUMBERING_LOCK = sa.text(f"SELECT pg_advisory_xact_lock({NUMBERING_LOCK_KEY})")


class _EngineTx:
    """A transaction on one SQLAlchemy connection."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self.rowcount = 0

    def execute(self, name: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        result = self._connection.execute(STATEMENTS[name], dict(params or {}))
        self.rowcount = result.rowcount
        if not result.returns_rows:
            return []
        return cast("list[Row]", list(result.mappings().all()))

    def execute_many(self, name: str, params: Sequence[Mapping[str, Any]]) -> None:
        if params:
            self._connection.execute(STATEMENTS[name], [dict(p) for p in params])


class EngineDatabase:
    """A `Database` on a SQLAlchemy engine; closing it disposes of the engine."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._writer = engine.execution_options(**{IMMEDIATE: True})
        self.where = describe_url(engine.url)
        is_sqlite = engine.url.get_backend_name() == "sqlite"
        self._has_advisory_locks = engine.url.get_backend_name() == "postgresql"
        # A SQLite read (WAL: never waits for a writer) is a short local call.
        self.local_reads = is_sqlite
        self.sqlite_path = engine.url.database if is_sqlite else None

    @contextmanager
    def read(self, action: str) -> Iterator[_EngineTx]:
        try:
            with self._engine.connect() as connection, connection.begin():
                yield _EngineTx(connection)
        except sa.exc.SQLAlchemyError as exc:
            raise to_store_error(exc, self.where, action) from exc

    @contextmanager
    def write(self, action: str, *, is_numbering: bool = False) -> Iterator[_EngineTx]:
        try:
            with self._writer.begin() as connection:
                if is_numbering and self._has_advisory_locks:
                    connection.execute(_TAKE_NUMBERING_LOCK)
                yield _EngineTx(connection)
        except sa.exc.SQLAlchemyError as exc:
            raise to_store_error(exc, self.where, action) from exc

    def close(self) -> None:
        self._engine.dispose()
