"""The store's cross-process locks: opening one SQLite file, and one server per store.

  * `hold_migration_lock(database)`: an OS file lock next to a SQLite file, held for the
    few ms of creating or migrating it (store.sqlitedb and store.database both take it).
  * `lock_home(home)`: one `conveyor serve` per home (`<home>/serve.lock`, flock).
  * `lock_database(url)`: one `conveyor serve` per PostgreSQL database (a session advisory
    lock on a connection kept open).

The server's two locks are held until the process exits, crash included (the kernel drops
the flock, PostgreSQL the session): a second server would resume the same pending runs and
take the first one's live runs for orphans. Refusals are StoreErrors that say which server
to stop. Must not know about runs or jobs; SQLAlchemy is imported only by `lock_database`.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from conveyor.errors import StoreError

__all__ = ["SERVER_LOCK_KEY", "hold_migration_lock", "lock_database", "lock_home"]

#: pg_try_advisory_lock key of "one server per database": any constant of conveyor's own,
#: but not store.enginedb.NUMBERING_LOCK_KEY, which every numbering transaction takes.
SERVER_LOCK_KEY = 0x636F6E7673727672  # "convsrvr" in ASCII
_held: list[object] = []  # the connection holding the database lock, for the process's life


@contextmanager
def hold_migration_lock(database: str) -> Iterator[None]:
    """Serialise opening (creating, migrating) one SQLite file across processes with an OS
    file lock next to it, held for a few ms.

    SQLite's own locking is not enough on a fresh file: two processes that both switch it to
    WAL and create the schema can meet a read-to-write upgrade, which SQLite answers with an
    immediate "database is locked" instead of waiting. flock locks belong to an open file,
    so a process must not take this lock twice.
    """
    if not database or database == ":memory:":
        yield
        return
    with open(Path(database).with_name(Path(database).name + ".lock"), "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def lock_home(home: Path) -> None:
    """One server per home: a second one would resume the same pending runs. The lock is
    held by an open file descriptor until the process exits (crash included)."""
    fd = os.open(home / "serve.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StoreError(
            f"serve: another conveyor server is using {home} "
            "(stop it, or give this one its own server.home / CONVEYOR_HOME)"
        ) from None
    os.set_inheritable(fd, False)


def lock_database(url: str) -> None:
    """One server per PostgreSQL database too: two servers on one database, each with its
    own home, would both resume its pending runs and take each other's live runs for
    orphans. A session advisory lock on a connection kept open until the process exits.
    Other backends: nothing (the home lock is the guard of a SQLite file)."""
    import sqlalchemy as sa

    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return
    where = parsed.render_as_string(hide_password=True)
    engine = sa.create_engine(parsed, poolclass=sa.pool.NullPool)
    try:
        connection = engine.connect()
        held = connection.execute(
            sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": SERVER_LOCK_KEY}
        ).scalar_one()
        connection.commit()  # the lock is the session's, not the transaction's
    except sa.exc.SQLAlchemyError as exc:
        raise StoreError(
            f"serve: cannot lock the store {where} (check that the database is reachable)"
        ) from exc
    if not held:
        connection.close()
        raise StoreError(
            f"serve: another conveyor server is using the store {where} "
            "(one server per store: stop it, or give this one its own database)"
        )
    _held.append(connection)
