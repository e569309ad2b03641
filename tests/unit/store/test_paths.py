"""store.paths: where the home and run folders are, and what run ids look like."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from conveyor.errors import StoreError
from conveyor.store.paths import home_dir, is_valid_run_id, new_run_id, run_dir


def test_home_dir_defaults_to_project_dot_conveyor() -> None:
    assert home_dir(Path("/p"), {}) == Path("/p/.conveyor")


def test_home_dir_honours_conveyor_home() -> None:
    assert home_dir(Path("/p"), {"CONVEYOR_HOME": "/state/ci"}) == Path("/state/ci")


def test_home_dir_resolves_relative_conveyor_home_from_project() -> None:
    assert home_dir(Path("/p"), {"CONVEYOR_HOME": "state"}) == Path("/p/state")


def test_run_dir_is_under_runs() -> None:
    assert run_dir(Path("/h"), "20261123T120000000Z-abcdefgh") == Path(
        "/h/runs/20261123T120000000Z-abcdefgh"
    )


@pytest.mark.parametrize("bad", ["", "..", "../x", "a/b", ".hidden", "a..b", "x" * 200])
def test_run_dir_refuses_unsafe_ids(bad: str) -> None:
    with pytest.raises(StoreError, match="not a conveyor run id"):
        run_dir(Path("/h"), bad)


def test_new_run_id_starts_with_utc_time() -> None:
    moment = datetime(2026, 11, 23, 12, 56, 1, 123456, tzinfo=UTC)
    assert new_run_id(moment).startswith("20261123T125601123Z-")


def test_new_run_ids_are_valid_unique_and_sortable() -> None:
    early = new_run_id(datetime(2026, 1, 1, tzinfo=UTC))
    late = new_run_id(datetime(2026, 1, 2, tzinfo=UTC))
    same = {new_run_id(datetime(2026, 1, 1, tzinfo=UTC)) for _ in range(200)}
    assert (early < late, len(same), is_valid_run_id(early)) == (True, 200, True)
