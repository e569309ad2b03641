"""The collector policy of a monitor's first tick: every automatic collection paused until
`resume()` (which hands CPython back its own setting), a budget of new objects, and
`settle()`: what is alive frozen out of the collector's way, after a full pass if asked."""

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
    gc.unfreeze()  # this test process's objects back under the collector
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


def test_settle_resumes_and_freezes_what_is_alive_after_a_full_pass_if_asked() -> None:
    collector = Collector()
    collector.pause(budget=10**9)
    first, second = _Node(), _Node()
    first.other, second.other = second, first
    gone = weakref.ref(first)
    del first, second
    kept = [_Node() for _ in range(100)]
    frozen = gc.get_freeze_count()
    pause_s = collector.settle(collect=True)
    assert (gc.isenabled(), collector.is_paused) == (True, False)
    assert gone() is None  # the garbage was freed, not frozen
    assert gc.get_freeze_count() >= frozen + len(kept)
    assert pause_s >= 0


def test_settle_without_a_pass_freezes_without_collecting() -> None:
    collector = Collector()
    collector.pause(budget=10**9)
    first, second = _Node(), _Node()
    first.other, second.other = second, first
    kept = weakref.ref(first)
    del first, second
    collector.settle(collect=False)
    assert kept() is not None  # frozen with the rest: the tick made no garbage, by contract
    gc.unfreeze()
    gc.collect()
    assert kept() is None


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
