"""The pure core imports no I/O machinery (asyncio, subprocess, sockets, HTTP, SQL)."""

from __future__ import annotations

import subprocess
import sys

CORE = [
    "conveyor.model",
    "conveyor.errors",
    "conveyor.records",
    "conveyor.variables",
    "conveyor.config",
    "conveyor.config.native",
    "conveyor.config.expr",
    "conveyor.config.expr_grammar",
    "conveyor.config.gitlab",
    "conveyor.config.gitlab.parse",
    "conveyor.config.gitlab.includes",
    "conveyor.config.gitlab.include_rules",
    "conveyor.config.yamlload",
    "conveyor.plan",
    "conveyor.globs",
    "conveyor.status",
    "conveyor.secrets",
    "conveyor.masking",
    "conveyor.supersede",
    "conveyor.triggers",
    "conveyor.suggest",
    "conveyor.inputs",
    "conveyor.addresses",
]
FORBIDDEN = ["asyncio", "subprocess", "socket", "httpx", "sqlalchemy", "fastapi"]

CODE = f"""
import importlib, sys
for name in {CORE!r}:
    importlib.import_module(name)
print(",".join(sorted(m for m in {FORBIDDEN!r} if m in sys.modules)))
"""


def test_core_modules_import_no_io_machinery() -> None:
    # A fresh interpreter: pytest itself has already imported some of these.
    done = subprocess.run(
        [sys.executable, "-c", CODE], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
