"""The collector policy of a monitor's first tick: every automatic collection paused until
`resume()` (which hands CPython back its own setting), a budget of new objects, and
`collect()` still freeing cyclic garbage."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from conveyor.monitor.collector import Collector


@pytest.fixture(autouse=True)
def collector_state() -> Iterator[None]:
    was_enabled = gc.isenabled()
    yield
    if was_enabled:
        gc.enable()


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_pause_stops_every_automatic_collection_until_resume() -> None:
    collector = Collector()
    collector.pause(budget=10**9)
    collector.pause(budget=10**9)  # twice is once
    assert (gc.isenabled(), collector.is_paused) == (False, True)
    collector.resume()
    assert (gc.isenabled(), collector.is_paused) == (True, False)
    collector.resume()  # not paused: nothing to do
    assert gc.isenabled()


def test_resume_leaves_a_collector_that_was_off_off() -> None:
    gc.disable()
    collector = Collector()
    collector.pause(budget=10**9)
    collector.resume()
    assert not gc.isenabled()


def test_collect_frees_cyclic_garbage_while_paused() -> None:
    collector = Collector()
    collector.pause(budget=10**9)
    first, second = _Node(), _Node()
    first.other, second.other = second, first
    gone = weakref.ref(first)
    del first, second
    pause_s = collector.collect()
    collector.resume()
    assert gone() is None
    assert pause_s >= 0


def test_over_budget_once_the_pause_made_more_objects_than_allowed() -> None:
    collector = Collector()
    assert not collector.is_over_budget()  # not paused
    collector.pause(budget=5000)
    kept: list[list[int]] = [[] for _ in range(1000)]
    assert not collector.is_over_budget()
    kept += [[] for _ in range(10_000)]
    assert collector.is_over_budget()
    collector.resume()
    assert not collector.is_over_budget()
    assert len(kept) == 11_000
