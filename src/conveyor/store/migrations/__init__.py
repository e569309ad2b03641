"""Alembic migrations of the run store, packaged so they work from an installed wheel.

`HEAD_REVISION` names the newest revision so `open_store` can compare it with the database
using one plain query and import Alembic only when an upgrade is due (a test checks that it
equals Alembic's head). To change the schema: edit schema.py, add a revision file in
`versions/` (script.py.mako is its template), bump `HEAD_REVISION`; the schema test then
checks that the migrations produce exactly schema.py's metadata.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["HEAD_REVISION", "SCRIPT_LOCATION"]

HEAD_REVISION = "0001"
SCRIPT_LOCATION = Path(__file__).parent
