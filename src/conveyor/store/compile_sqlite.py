"""Generates store/sqlite_sql.py: store/statements.py compiled with SQLAlchemy's SQLite
dialect, for the stdlib executor (`store.sqlitedb`) that runs the embedded store without
importing SQLAlchemy.

Run `python -m conveyor.store.compile_sqlite` after changing schema.py, statements.py or the
head revision; a unit test compiles again and fails while the checked-in module differs.
Per statement it writes the SQL text (`?` placeholders), the bind parameters in placeholder
order with their value conversion, and the result columns with theirs; plus the DDL of a
fresh database exactly as `metadata.create_all` emits it (tables in dependency order, each
followed by its indexes by name, then Alembic's version table) and the head revision. A
type without a known conversion, or a statement with a bound constant, is refused: both
would make the two executors store different values. Imports SQLAlchemy (a build step).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import cast

import sqlalchemy as sa
from sqlalchemy.dialects.sqlite import pysqlite
from sqlalchemy.schema import CreateIndex, CreateTable
from sqlalchemy.sql.compiler import SQLCompiler

from conveyor.store.migrations import HEAD_REVISION
from conveyor.store.schema import UtcDateTime, metadata
from conveyor.store.statements import STATEMENTS

__all__ = ["TARGET", "main", "render_module"]

TARGET = Path(__file__).with_name("sqlite_sql.py")
COMMAND = "python -m conveyor.store.compile_sqlite"

# Types whose values sqlite3 stores as SQLAlchemy would without any conversion.
_PLAIN = (sa.String, sa.Integer, sa.types.NullType)


def _conversion(type_: sa.types.TypeEngine[object], where: str, *, is_result: bool) -> str:
    """The name of the conversion `store.sqlitedb` applies for a value of `type_`."""
    if isinstance(type_, UtcDateTime):
        return "datetime"
    if isinstance(type_, sa.Boolean):
        return "bool"
    if isinstance(type_, sa.LargeBinary):
        return "bytes" if is_result else ""
    if isinstance(type_, _PLAIN):
        return ""
    raise TypeError(
        f"{where}: no SQLite conversion for type {type_!r} "
        "(teach compile_sqlite and store.sqlitedb to store it as SQLAlchemy does)"
    )


def _compile(
    name: str, statement: sa.Executable
) -> tuple[str, list[tuple[str, str]], list[tuple[str, str]]]:
    if not isinstance(statement, sa.ClauseElement):
        raise TypeError(f"statement {name}: not a SQL expression ({type(statement).__name__})")
    compiled = cast(SQLCompiler, statement.compile(dialect=pysqlite.dialect(paramstyle="qmark")))
    params: list[tuple[str, str]] = []
    for param in compiled.positiontup or ():
        bind = compiled.binds[param]
        if not bind.required:
            raise ValueError(
                f"statement {name}: bound constant {param!r} (write it as sa.literal_column)"
            )
        params.append((param, _conversion(bind.type, f"{name}:{param}", is_result=False)))
    columns: list[tuple[str, str]] = []
    if isinstance(statement, sa.Select):
        for column in statement.selected_columns:
            key = str(column.key)
            columns.append((key, _conversion(column.type, f"{name}:{key}", is_result=True)))
    return str(compiled), params, columns


def _ddl() -> list[str]:
    """What `metadata.create_all` then the Alembic version table create, statement by
    statement, as SQLite will record them."""
    dialect = pysqlite.dialect()
    statements = []
    for table in metadata.sorted_tables:
        statements.append(str(CreateTable(table).compile(dialect=dialect)))
        for index in sorted(table.indexes, key=lambda ix: str(ix.name)):
            statements.append(str(CreateIndex(index).compile(dialect=dialect)))
    version = sa.Table(
        "alembic_version",
        sa.MetaData(),
        sa.Column("version_num", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
    )
    statements.append(str(CreateTable(version).compile(dialect=dialect)))
    return statements


def _literal(text: str) -> str:
    """A string literal as ruff format writes it: double quotes unless the text holds more
    double than single quotes (so the checked-in module is already formatted)."""
    quote = "'" if text.count('"') > text.count("'") else '"'
    escaped = text.replace("\\", "\\\\").replace(quote, "\\" + quote)
    escaped = escaped.replace("\n", "\\n").replace("\t", "\\t")
    return quote + escaped + quote


def _pairs(field: str, pairs: list[tuple[str, str]]) -> list[str]:
    if not pairs:
        return [f"        {field}=(),"]
    if len(pairs) == 1:  # a one-tuple's comma is not a "magic trailing comma" for ruff
        (a, b) = pairs[0]
        return [f"        {field}=(({_literal(a)}, {_literal(b)}),),"]
    return [
        f"        {field}=(",
        *(f"            ({_literal(a)}, {_literal(b)})," for a, b in pairs),
        "        ),",
    ]


def render_module() -> str:
    """The text of store/sqlite_sql.py for the current statements, schema and revision."""
    lines = [
        f'"""SQLite SQL of the run store: generated by `{COMMAND}`; do not edit.',
        "",
        "store/statements.py compiled with SQLAlchemy's SQLite dialect, the DDL of a fresh",
        "database and the head revision, for the stdlib executor (store.sqlitedb).",
        '"""',
        "",
        "# ruff: noqa: E501",
        "",
        "from conveyor.store.executor import CompiledStatement",
        "",
        '__all__ = ["DDL", "HEAD_REVISION", "STATEMENTS"]',
        "",
        f"HEAD_REVISION = {_literal(HEAD_REVISION)}",
        "",
        "DDL = (",
        *(f"    {_literal(statement)}," for statement in _ddl()),
        ")",
        "",
        "STATEMENTS: dict[str, CompiledStatement] = {",
    ]
    for name in sorted(STATEMENTS):
        sql, params, columns = _compile(name, STATEMENTS[name])
        lines += [
            f"    {_literal(name)}: CompiledStatement(",
            f"        sql={_literal(sql)},",
            *_pairs("params", params),
            *_pairs("columns", columns),
            "    ),",
        ]
    lines += ["}", ""]
    return "\n".join(lines)


def main() -> int:
    TARGET.write_text(render_module(), encoding="utf-8")
    sys.stdout.write(f"wrote {TARGET}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
