"""Unit tests of the pure helpers of `conveyor run`."""

from __future__ import annotations

import pytest

from conveyor.commands.options import parse_vars
from conveyor.errors import UsageError


def test_parse_vars_splits_on_first_equals() -> None:
    assert parse_vars(["A=1", "B=x=y", "C="]) == {"A": "1", "B": "x=y", "C": ""}


@pytest.mark.parametrize("pair", ["NOEQUALS", "=value", " =x"])
def test_parse_vars_rejects_malformed_pairs(pair: str) -> None:
    with pytest.raises(UsageError, match="expected KEY=VALUE"):
        parse_vars([pair])
