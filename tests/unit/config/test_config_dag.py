"""Cycle detection and stable topological order."""

from __future__ import annotations

import pytest

from conveyor.config.dag import find_cycles, format_cycle, topological_order


def test_find_cycles_none() -> None:
    assert find_cycles({"a": [], "b": ["a"], "c": ["a", "b", "missing"]}) == []


def test_find_cycles_reports_each_once() -> None:
    edges = {"a": ["b"], "b": ["a"], "c": ["c"], "d": ["a"]}
    assert find_cycles(edges) == [["a", "b", "a"], ["c", "c"]]


def test_format_cycle() -> None:
    assert format_cycle(["a", "b", "a"]) == "a -> b -> a"


def test_topological_order_is_stable_by_given_order() -> None:
    names = ["d", "c", "b", "a"]
    assert topological_order(names, {"d": ["a"], "b": ["a"]}) == ["c", "a", "d", "b"]


def test_topological_order_ignores_unknown_names() -> None:
    assert topological_order(["a"], {"a": ["ghost"]}) == ["a"]


def test_topological_order_names_a_cycle() -> None:
    with pytest.raises(ValueError, match="cycle in needs: a -> b -> a"):
        topological_order(["a", "b", "c"], {"a": ["b"], "b": ["a"]})
