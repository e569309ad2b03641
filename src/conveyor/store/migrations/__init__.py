"""Alembic migrations of the run store, packaged so they work from an installed wheel.

`HEAD_REVISION` names the newest revision so `open_store` can compare it with the database
using one plain query and import Alembic only when an upgrade is due (a test checks that it
equals Alembic's head). A database without tables skips Alembic altogether: it gets
schema.py's metadata (the embedded store: the DDL compiled into store/sqlite_sql.py) and
`HEAD_REVISION` stamped. To change the schema: edit schema.py, add a revision file in
`versions/` (script.py.mako is its template), bump `HEAD_REVISION`, and run
`python -m conveyor.store.compile_sqlite`; the migration tests then check that `alembic
upgrade head` builds exactly schema.py's metadata, down to the same `CREATE` statements as
that direct path.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["HEAD_REVISION", "SCRIPT_LOCATION"]

HEAD_REVISION = "0004"
SCRIPT_LOCATION = Path(__file__).parent
