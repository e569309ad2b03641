"""The problem collector."""

from __future__ import annotations

import pytest

from conveyor.config.problems import Problems
from conveyor.errors import ConfigError
from conveyor.model import Mark


def test_problems_sorted_deduplicated_and_whole_file() -> None:
    problems = Problems("f.yml")
    problems.add(Mark("f.yml", 3, 1), "later")
    problems.add(None, "whole file")
    problems.add(Mark("f.yml", 3, 1), "later")
    problems.add(Mark("f.yml", 1, 2), "first")
    assert len(problems) == 4
    with pytest.raises(ConfigError) as caught:
        problems.raise_if_any()
    assert str(caught.value).splitlines() == [
        "f.yml: whole file",
        "f.yml:1:2: first",
        "f.yml:3:1: later",
    ]


def test_problems_none_raises_nothing() -> None:
    Problems("f.yml").raise_if_any()
