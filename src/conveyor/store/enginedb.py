"""EngineDatabase: the store's `Database` over a SQLAlchemy engine (any URL: PostgreSQL for
several nodes, or a SQLite file given as a URL).

Runs store/statements.py's constructs by name; SQLAlchemy's types convert the values
(`schema.UtcDateTime` and the rest), and rows come back as mappings. Writes on SQLite begin
with `BEGIN IMMEDIATE` (the `database.IMMEDIATE` option). Driver exceptions leave as
StoreError through `database.to_store_error` (IntegrityConflict for a broken constraint).
Must not know about runs or jobs.
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

__all__ = ["EngineDatabase"]


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
    def write(self, action: str) -> Iterator[_EngineTx]:
        try:
            with self._writer.begin() as connection:
                yield _EngineTx(connection)
        except sa.exc.SQLAlchemyError as exc:
            raise to_store_error(exc, self.where, action) from exc

    def close(self) -> None:
        self._engine.dispose()
