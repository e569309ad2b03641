"""`create_delivered_run` (the webhook intake's one transaction) survives a restart of the
SQLite store. Its behaviour on every store (de-duplication, numbering, batches) is in the
conformance suite (test_conformance.py, section Deliveries)."""

from __future__ import annotations

from pathlib import Path

from conveyor.store import open_store
from tests.integration.store.test_conformance import make_run


def test_delivered_run_survives_a_restart(tmp_path: Path) -> None:
    first = open_store(tmp_path / "home")
    assert first.create_delivered_run(make_run("r1"), "gitlab:u-1") is None
    first.close()
    again = open_store(tmp_path / "home")
    try:
        assert again.create_delivered_run(make_run("r2"), "gitlab:u-1") == "r1"
        assert again.get_run("r2") is None
    finally:
        again.close()
