"""store/sqlite_sql.py is what `python -m conveyor.store.compile_sqlite` generates from the
statements, schema and head revision of this tree."""

from __future__ import annotations

from conveyor.store import sqlite_sql
from conveyor.store.compile_sqlite import COMMAND, TARGET, render_module
from conveyor.store.migrations import HEAD_REVISION
from conveyor.store.statements import STATEMENTS


def test_sqlite_sql_is_fresh() -> None:
    assert TARGET.read_text(encoding="utf-8") == render_module(), (
        f"store/sqlite_sql.py is stale: run `{COMMAND}` and commit the result"
    )


def test_sqlite_sql_compiles_every_statement() -> None:
    assert (sorted(sqlite_sql.STATEMENTS), sqlite_sql.HEAD_REVISION) == (
        sorted(STATEMENTS),
        HEAD_REVISION,
    )


def test_sqlite_sql_converts_times_and_flags() -> None:
    columns = dict(sqlite_sql.STATEMENTS["run_select"].columns)
    params = dict(sqlite_sql.STATEMENTS["run_update"].params)
    assert (columns["created_at"], columns["cancel_requested"], columns["repo"]) == (
        "datetime",
        "bool",
        "",
    )
    assert params["v_started_at"] == "datetime"
