"""What a tick leaves behind for the cyclic collector, over a real fake upstream: an
unchanged fetch keeps the objects the entry already holds (its fresh copies die young), a
changed one replaces them; and a monitor given the process's collector pauses it for the
first tick (sooner back on when that tick fails or outgrows its budget), runs one full pass
after it and hands CPython its setting back."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest
from structlog.testing import capture_logs
from tests.fakes.upstreams import FakeUpstream, Fault
from tests.fakes.upstreams.apis import github_run
from tests.fakes.upstreams.scenario import ENV, targets_for

from conveyor.monitor.collector import Collector
from conveyor.monitor.service import Monitor
from conveyor.settings.monitor import MonitorSettings

KEYS = ("group/sub/app@main", "octo/api@main", "folder/app@main")  # one per provider


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    """A settled first tick freezes what is alive: here, the test process's objects."""
    yield
    gc.unfreeze()


def _monitor(fake: FakeUpstream, **kwargs: object) -> Monitor:
    settings = MonitorSettings.model_validate(
        {"targets": targets_for(fake.url), "timeout": 2.0, "interval": 0.2, "jitter": 0}
    )
    return Monitor(settings, ENV, retry_wait_s=0.01, **kwargs)  # type: ignore[arg-type]


async def test_an_unchanged_fetch_keeps_the_objects_a_changed_one_replaces_them(
    fake: FakeUpstream,
) -> None:
    monitor = _monitor(fake)
    await monitor.sync_once()
    first = {key: monitor.cache.get(key) for key in KEYS}
    fake.github["octo/api"] = [github_run(9), *fake.github["octo/api"]]
    await monitor.sync_once()
    await monitor.stop()
    for key in KEYS:
        before, after = first[key], monitor.cache.get(key)
        assert before is not None and after is not None
        assert after.fetched_at is not None and after.fetched_at >= before.fetched_at  # type: ignore[operator]
        if key == "octo/api@main":
            assert after.pipelines[0].id not in {p.id for p in before.pipelines}
            assert after.pipelines is not before.pipelines
        else:
            assert after.pipelines is before.pipelines, key
            assert after.health is before.health, key


async def test_collections_pause_for_the_first_tick_and_full_passes_follow_each_tick(
    fake: FakeUpstream,
) -> None:
    was_enabled, frozen = gc.isenabled(), gc.get_freeze_count()
    collector = Collector()
    monitor = _monitor(fake, collector=collector)
    # (finished ticks so far, collector on) at each loop iteration while the monitor runs
    seen: list[tuple[int, bool]] = []
    try:
        with capture_logs() as logs:
            await monitor.start()
            for _ in range(2000):
                ticks = sum(e["event"] == "sync.tick_finished" for e in logs)
                seen.append((ticks, gc.isenabled()))
                if ticks >= 2:
                    break
                await asyncio.sleep(0.001)
            await monitor.stop()
    finally:
        if was_enabled:
            gc.enable()
    events = [e["event"] for e in logs]
    assert events.count("sync.tick_finished") >= 2
    first_tick = [enabled for ticks, enabled in seen if ticks == 0]
    begun = first_tick.index(False)  # once the loop has started its first tick
    assert True not in first_tick[begun:]
    assert True in {enabled for ticks, enabled in seen if ticks == 1}  # later ones
    settled = [e for e in logs if e["event"] == "monitor.first_tick_settled"]
    assert len(settled) == 1  # after the first tick only
    assert (settled[0]["collected"], settled[0]["pause_ms"] >= 0) == (False, True)
    assert events.index("sync.tick_finished") < events.index("monitor.first_tick_settled")
    assert "monitor.collector_resumed" not in events  # a healthy first tick stays in budget
    assert gc.get_freeze_count() > frozen
    assert (collector.is_paused, gc.isenabled()) == (False, was_enabled)


async def test_a_failing_first_tick_collects_again_once_over_its_budget(
    fake: FakeUpstream,
) -> None:
    for repo in ("group/sub/app", "group/other", "octo/api"):
        fake.faults[repo] = Fault.RESET  # each failure leaves cyclic garbage
    fake.faults["folder/app"] = Fault.HANG  # keeps the first tick open for its timeout
    was_enabled = gc.isenabled()
    # three failures make far more than this (the default budget is for 10,000 targets)
    monitor = _monitor(fake, collector=Collector(), pause_budget=200)
    try:
        with capture_logs() as logs:
            await monitor.start()
            for _ in range(100):
                if any(e["event"] == "monitor.collector_resumed" for e in logs):
                    break
                await asyncio.sleep(0.02)
            resumed_in_tick = gc.isenabled()
            ticks = sum(e["event"] == "sync.tick_finished" for e in logs)
            for _ in range(200):  # the hanging fetch's timeout ends the tick
                if any(e["event"] == "monitor.first_tick_settled" for e in logs):
                    break
                await asyncio.sleep(0.02)
            await monitor.stop()
    finally:
        if was_enabled:
            gc.enable()
    assert (resumed_in_tick, ticks) == (True, 0)  # before the first tick ended
    settled = [e for e in logs if e["event"] == "monitor.first_tick_settled"]
    assert [e["collected"] for e in settled] == [True]  # failed fetches: a full pass first


async def test_stop_during_the_first_tick_turns_the_collector_back_on(
    fake: FakeUpstream,
) -> None:
    fake.faults["folder/app"] = Fault.HANG  # the first tick cannot end before stop
    was_enabled = gc.isenabled()
    monitor = _monitor(fake, collector=Collector())
    try:
        await monitor.start()
        await asyncio.sleep(0.1)
        assert not gc.isenabled()
        await monitor.stop()
        assert gc.isenabled() == was_enabled
    finally:
        if was_enabled:
            gc.enable()


async def test_without_targets_the_collector_is_left_alone() -> None:
    monitor = Monitor(MonitorSettings(), ENV, collector=Collector())
    await monitor.start()
    await asyncio.sleep(0.05)
    assert gc.isenabled()
    await monitor.stop()
    assert gc.isenabled()
