"""The problem collector and did-you-mean."""

from __future__ import annotations

import pytest

from conveyor.config.problems import Problems, did_you_mean
from conveyor.errors import ConfigError
from conveyor.model import Mark


def test_did_you_mean_close_and_far() -> None:
    assert did_you_mean("biuld", ["build", "test"]) == ' (did you mean "build"?)'
    assert did_you_mean("zzz", ["build", "test"]) == ""


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
