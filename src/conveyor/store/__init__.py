"""The run store: where runs, jobs, process groups, webhook deliveries and monitor
snapshots are kept (SQL; one protocol per concern in `store.base`), and where output lines
go and are read back (JSONL files: `store.logfiles`, `store.logreader`).

`open_store(home)` opens (creating and migrating) `home/conveyor.db` with stdlib sqlite3
(`store.sqlitedb`): SQLAlchemy and Alembic are imported only when that file is behind the
head revision. `open_store_url(url)` opens any SQLAlchemy URL (PostgreSQL for several
nodes) through SQLAlchemy (`store.enginedb`), imported inside the function. Both give the
same SqlRunStore. Must not run jobs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from conveyor.errors import StoreError
from conveyor.store.paths import DB_NAME, ensure_home, make_private

if TYPE_CHECKING:
    from sqlalchemy import URL

    from conveyor.store.sql import SqlRunStore

__all__ = ["open_store", "open_store_url"]


def open_store(home: Path, *, busy_timeout_s: float = 30.0) -> SqlRunStore:
    """The SQLite store at `home/conveyor.db`; creates `home` (with a `.gitignore` of `*`)
    and brings the schema up to date. `busy_timeout_s`: how long a write waits for another
    process holding the database lock before failing with "database is locked"."""
    from conveyor.store.sql import SqlRunStore
    from conveyor.store.sqlitedb import open_sqlite_database

    ensure_home(home)
    database = open_sqlite_database(str(home / DB_NAME), busy_timeout_s=busy_timeout_s)
    make_private(home / DB_NAME)
    return SqlRunStore(database)


def open_store_url(url: str, *, busy_timeout_s: float = 30.0) -> SqlRunStore:
    """A store at any SQLAlchemy URL, e.g. `postgresql+psycopg://user@host/conveyor`
    (`busy_timeout_s` applies to SQLite only)."""
    import sqlalchemy as sa

    try:
        parsed = sa.make_url(url)
    except (sa.exc.ArgumentError, ValueError) as exc:  # ValueError: a port that is no number
        raise StoreError(
            "store url: not a database URL (expected e.g. postgresql+psycopg://host/db)"
        ) from exc
    return _open_url(parsed, busy_timeout_s)


def _open_url(url: URL, busy_timeout_s: float) -> SqlRunStore:
    import sqlalchemy as sa

    from conveyor.store.database import create_store_engine, describe_url, migrate
    from conveyor.store.enginedb import EngineDatabase
    from conveyor.store.sql import SqlRunStore

    try:
        engine = create_store_engine(url, busy_timeout_s=busy_timeout_s)
    except (sa.exc.ArgumentError, ImportError) as exc:
        detail = str(exc)
        if url.password:  # the driver's text may quote the URL it was given
            detail = detail.replace(str(url.password), "***")
        raise StoreError(
            f"{describe_url(url)}: cannot open the run store: {detail} "
            "(install the database driver or fix the URL)"
        ) from exc
    try:
        migrate(engine)
    except BaseException:
        engine.dispose()  # close the pooled connections of a store that never opened
        raise
    return SqlRunStore(EngineDatabase(engine))
