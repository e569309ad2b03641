"""monitor.refresh: one fetch in flight per target, one follow-up at most, then quiet."""

from __future__ import annotations

import asyncio

from conveyor.monitor.refresh import Refresh, Refresher
from conveyor.settings.monitor import Target

TARGET = Target("gitlab", "g/a", "main", "https://gitlab.com")
OTHER = Target("gitlab", "g/b", "main", "https://gitlab.com")


class GatedFetch:
    """A fetch that records its target and waits until the test opens the gate."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.gate = asyncio.Event()

    async def __call__(self, target: Target) -> None:
        self.calls.append(target.key)
        await self.gate.wait()


async def test_refresher_burst_costs_one_fetch_and_one_follow_up() -> None:
    fetch = GatedFetch()
    refresher = Refresher(fetch, min_gap_s=0)
    outcomes = [refresher.request(TARGET)]
    await asyncio.sleep(0)  # the first fetch is under way: later events need a follow-up
    outcomes += [refresher.request(TARGET) for _ in range(99)]
    fetch.gate.set()
    for _ in range(100):  # let the follow-up run (and find nothing more queued)
        await asyncio.sleep(0)
    await refresher.aclose()
    assert outcomes == [Refresh.STARTED, Refresh.QUEUED] + [Refresh.COALESCED] * 98
    assert fetch.calls == ["g/a@main", "g/a@main"]


async def test_refresher_events_before_the_fetch_started_join_it() -> None:
    fetch = GatedFetch()
    fetch.gate.set()
    refresher = Refresher(fetch, min_gap_s=0)
    for _ in range(3):
        refresher.request(TARGET)
    for _ in range(100):
        await asyncio.sleep(0)
    await refresher.aclose()
    assert fetch.calls == ["g/a@main"]


async def test_refresher_targets_do_not_wait_for_each_other() -> None:
    fetch = GatedFetch()
    refresher = Refresher(fetch, min_gap_s=0)
    assert (
        refresher.request(TARGET),
        refresher.request(OTHER),
    ) == (Refresh.STARTED, Refresh.STARTED)
    await asyncio.sleep(0)
    assert fetch.calls == ["g/a@main", "g/b@main"]
    await refresher.aclose()


async def test_refresher_starts_afresh_after_a_fetch_ended() -> None:
    fetch = GatedFetch()
    fetch.gate.set()
    refresher = Refresher(fetch, min_gap_s=0)
    refresher.request(TARGET)
    for _ in range(5):
        await asyncio.sleep(0)
    assert refresher.request(TARGET) == Refresh.STARTED
    await refresher.aclose()
