"""Full collections deferred while the monitor runs: CPython's own trigger for the oldest
generation is off until `restore()`, young generations are untouched, and `collect()` still
frees cyclic garbage."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from conveyor.monitor.collector import FullCollections


@pytest.fixture
def thresholds() -> Iterator[tuple[int, int, int]]:
    saved = gc.get_threshold()
    yield saved
    gc.set_threshold(*saved)


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_defer_turns_off_only_the_oldest_generations_trigger(
    thresholds: tuple[int, int, int],
) -> None:
    collections = FullCollections()
    collections.defer()
    young, middle, oldest = gc.get_threshold()
    assert (young, middle) == thresholds[:2]
    assert oldest >= 2**31 - 1
    assert collections.is_deferred
    collections.defer()  # twice is once: restore still finds CPython's own values
    collections.restore()
    assert gc.get_threshold() == thresholds
    assert not collections.is_deferred


def test_collect_frees_cyclic_garbage_while_deferred(thresholds: tuple[int, int, int]) -> None:
    collections = FullCollections()
    collections.defer()
    first, second = _Node(), _Node()
    first.other, second.other = second, first
    gone = weakref.ref(first)
    del first, second
    pause_s = collections.collect()
    collections.restore()
    assert gone() is None
    assert pause_s >= 0
