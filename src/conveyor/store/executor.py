"""The executor boundary of the SQL run store: named statements run inside transactions.

`SqlRunStore` (and the delivery and snapshot writes) are written once against `Database`;
two implementations run them: `store.enginedb.EngineDatabase` (SQLAlchemy, any URL) and
`store.sqlitedb.SqliteDatabase` (stdlib `sqlite3` with the SQL that `store.compile_sqlite`
generated, so a run on the embedded store never imports SQLAlchemy). Statements are known by
name (store/statements.py defines them); parameters and rows are plain Python values (aware
UTC datetimes, bools, bytes). Also the one wording of driver failures, so both executors
raise the same StoreError messages. Must not import SQLAlchemy or know about tables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, NamedTuple, Protocol

from conveyor.errors import StoreError

__all__ = [
    "CompiledStatement",
    "Database",
    "IntegrityConflict",
    "MissingReference",
    "Row",
    "Tx",
    "describe_failure",
    "is_missing_reference",
]

# How each driver names a broken foreign key: PostgreSQL's SQLSTATE (psycopg's `sqlstate`),
# SQLite's extended result code (sqlite3's `sqlite_errorname`, Python 3.11+).
_FOREIGN_KEY_SQLSTATE = "23503"
_FOREIGN_KEY_SQLITE = "SQLITE_CONSTRAINT_FOREIGNKEY"

#: A result row: column name -> value.
Row = Mapping[str, Any]


class IntegrityConflict(StoreError):
    """A write broke a key or uniqueness constraint (a duplicate run id, a run number another
    process took first, a delivery seen before). Its message is the generic one; the store
    catches it where a conflict has a meaning (retry, de-duplication)."""


class MissingReference(StoreError):
    """A write referred to a record that does not exist (a foreign key: a job or a process
    group of an unknown run). Not an IntegrityConflict: retrying cannot help. Its message is
    the generic one; the store says which record where it knows (`run X does not exist`)."""


class CompiledStatement(NamedTuple):
    """One statement as compiled for a driver (store/sqlite_sql.py holds them): the SQL
    text with `?` placeholders, the bind parameters in placeholder order with the
    conversion each value needs, and the result columns with theirs ("" = none). An
    expanding parameter (`IN` list) appears in `sql` as `__[POSTCOMPILE_<name>]`."""

    sql: str
    params: tuple[tuple[str, str], ...]
    columns: tuple[tuple[str, str], ...]


class Tx(Protocol):
    """One open transaction."""

    #: Rows changed by the last `execute` (an UPDATE or DELETE).
    rowcount: int

    def execute(self, name: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        """Run the named statement with `params`; its rows (empty for a write)."""
        ...

    def execute_many(self, name: str, params: Sequence[Mapping[str, Any]]) -> None:
        """Run the named write once per parameter set."""
        ...


class Database(Protocol):
    """Where the statements run. Both context managers commit on success and roll back on
    any exception; driver errors leave them as StoreError (IntegrityConflict for a broken
    constraint) whose message says `where`, the `action` and how to fix it."""

    #: The file or URL (without password) for messages.
    where: str
    #: True when a read is a short local call (a SQLite file) a server may make on its loop.
    local_reads: bool
    #: The SQLite file, for the change counter of `store.runcache`; None for other databases.
    sqlite_path: str | None

    def read(self, action: str) -> AbstractContextManager[Tx]: ...

    def write(self, action: str, *, is_numbering: bool = False) -> AbstractContextManager[Tx]:
        """A write transaction; on SQLite it takes the write lock up front (BEGIN IMMEDIATE)
        so concurrent processes queue instead of failing a read-to-write upgrade.
        `is_numbering`: the transaction assigns run numbers; on PostgreSQL it first takes a
        transaction-level advisory lock so such transactions run one after another instead
        of colliding on the same number (SQLite's write lock already does that)."""
        ...

    def close(self) -> None: ...


def is_missing_reference(driver_error: BaseException | None) -> bool:
    """True when a driver's integrity error is a broken foreign key (sqlite3 or psycopg)."""
    return (
        getattr(driver_error, "sqlstate", None) == _FOREIGN_KEY_SQLSTATE
        or getattr(driver_error, "sqlite_errorname", None) == _FOREIGN_KEY_SQLITE
    )


def describe_failure(
    detail: str, where: str, action: str, *, is_integrity: bool, is_missing: bool = False
) -> StoreError:
    """The StoreError for a driver failure whose message is `detail`: where, what and how to
    fix, without driver noise (only its first line) or secrets (`where` has no password).
    `is_missing`: the integrity failure is a broken foreign key (`is_missing_reference`)."""
    detail = detail.splitlines()[0] if detail else "unknown database error"
    if "locked" in detail or "busy" in detail:
        hint = "another conveyor process held it too long; retry, or look for a stuck process"
        return StoreError(f"{where}: database is locked: cannot {action} ({hint})")
    if is_integrity and is_missing:
        return MissingReference(
            f"{where}: cannot {action}: a record it refers to does not exist "
            "(create that record first)"
        )
    if is_integrity:
        return IntegrityConflict(f"{where}: cannot {action}: {detail} (the record already exists)")
    return StoreError(
        f"{where}: cannot {action}: {detail} "
        "(check that the database exists, is writable and is a conveyor store)"
    )
