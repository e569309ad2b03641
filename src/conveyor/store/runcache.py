"""RunsSeen: the run records a SQLite store read since its database last changed.

Used by `store.sql.SqlRunStore.get_run` (the runs API's hottest read); validated by SQLite's
`PRAGMA data_version`, so it serves a record only while no connection of any process has
committed since. Must not write to the database or know about tables.
"""

from __future__ import annotations

import sqlite3
import threading
import urllib.parse

from conveyor.model import RunRecord

__all__ = ["RunsSeen"]


class RunsSeen:
    """The run records `get_run` read since the database last changed (SQLite files only).

    `PRAGMA data_version` on a connection of its own changes whenever any other connection,
    of this process or another, commits; any change empties the cache, so a record is
    served from it only while nothing at all was written since it was read. A record read
    while a commit lands is kept under the version seen *before* the read, which the commit
    already made stale. Mostly saves the hottest read of the runs API while runs only write
    log files. Without a file (`:memory:`) it never caches."""

    _MAX_RUNS = 1024

    def __init__(self, path: str) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, RunRecord] = {}
        self._version = -1
        self._connection: sqlite3.Connection | None = None
        if path and path != ":memory:" and not path.startswith("file:"):
            try:
                self._connection = sqlite3.connect(
                    f"file:{urllib.parse.quote(path)}?mode=ro",
                    uri=True,
                    check_same_thread=False,
                    isolation_level=None,
                )
            except sqlite3.Error:
                self._connection = None

    def version(self) -> int:
        """The database's data version now; -1 (never cached) when it cannot be read."""
        if self._connection is None:
            return -1
        with self._lock:
            try:
                row = self._connection.execute("PRAGMA data_version").fetchone()
            except sqlite3.Error:
                return -1
        return int(row[0])

    def get(self, run_id: str, version: int) -> RunRecord | None:
        with self._lock:
            if version != self._version:
                self._runs.clear()
                self._version = version
                return None
            return self._runs.get(run_id)

    def put(self, run: RunRecord, version: int) -> None:
        if version < 0:
            return
        with self._lock:
            if version != self._version:
                return
            if len(self._runs) >= self._MAX_RUNS:
                self._runs.clear()
            self._runs[run.run_id] = run

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
