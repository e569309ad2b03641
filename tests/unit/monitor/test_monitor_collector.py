"""The monitor's collector policy: full passes deferred (CPython's trigger for the oldest
generation off until `restore()`, the young generations untouched), every automatic
collection paused and resumed (the first tick), and `collect()` still freeing cyclic
garbage."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from conveyor.monitor.collector import Collector


@pytest.fixture
def thresholds() -> Iterator[tuple[int, int, int]]:
    saved, was_enabled = gc.get_threshold(), gc.isenabled()
    yield saved
    gc.set_threshold(*saved)
    if was_enabled:
        gc.enable()


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_defer_turns_off_only_the_oldest_generations_trigger(
    thresholds: tuple[int, int, int],
) -> None:
    collector = Collector()
    collector.defer()
    young, middle, oldest = gc.get_threshold()
    assert (young, middle) == thresholds[:2]
    assert oldest >= 2**31 - 1
    assert collector.is_deferred
    collector.defer()  # twice is once: restore still finds CPython's own values
    collector.restore()
    assert gc.get_threshold() == thresholds
    assert not collector.is_deferred


def test_collect_frees_cyclic_garbage_while_deferred(thresholds: tuple[int, int, int]) -> None:
    collector = Collector()
    collector.defer()
    collector.pause()
    first, second = _Node(), _Node()
    first.other, second.other = second, first
    gone = weakref.ref(first)
    del first, second
    pause_s = collector.collect()
    collector.restore()
    assert gone() is None
    assert pause_s >= 0


def test_pause_stops_every_automatic_collection_until_resume(
    thresholds: tuple[int, int, int],
) -> None:
    collector = Collector()
    collector.pause()
    collector.pause()  # twice is once
    assert not gc.isenabled()
    collector.resume()
    assert gc.isenabled()
    collector.pause()
    collector.restore()  # restore resumes too
    assert gc.isenabled()


def test_resume_leaves_a_collector_that_was_off_off(thresholds: tuple[int, int, int]) -> None:
    gc.disable()
    collector = Collector()
    collector.pause()
    collector.resume()
    assert not gc.isenabled()
