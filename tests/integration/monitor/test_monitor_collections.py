"""What a tick leaves behind for the cyclic collector, over a real fake upstream: an
unchanged fetch keeps the objects the entry already holds (its fresh copies die young), a
changed one replaces them; and a monitor given the process's full collections defers them
while it runs, runs one after each tick and hands CPython its trigger back at stop."""

from __future__ import annotations

import asyncio
import gc

from structlog.testing import capture_logs
from tests.fakes.upstreams import FakeUpstream, Fault
from tests.fakes.upstreams.apis import github_run
from tests.fakes.upstreams.scenario import ENV, targets_for

from conveyor.monitor.collector import Collector
from conveyor.monitor.service import Monitor
from conveyor.settings.monitor import MonitorSettings

KEYS = ("group/sub/app@main", "octo/api@main", "folder/app@main")  # one per provider


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
    saved, was_enabled = gc.get_threshold(), gc.isenabled()
    collector = Collector()
    monitor = _monitor(fake, collector=collector)
    # (finished ticks so far, collector on) at each loop iteration while the monitor runs
    seen: list[tuple[int, bool]] = []
    try:
        with capture_logs() as logs:
            await monitor.start()
            assert gc.get_threshold()[:2] == saved[:2]
            assert gc.get_threshold()[2] > saved[2]
            for _ in range(2000):
                ticks = sum(e["event"] == "sync.tick_finished" for e in logs)
                seen.append((ticks, gc.isenabled()))
                if ticks >= 2:
                    break
                await asyncio.sleep(0.001)
            await monitor.stop()
    finally:
        gc.set_threshold(*saved)
        if was_enabled:
            gc.enable()
    events = [e["event"] for e in logs]
    assert events.count("sync.tick_finished") >= 2
    first_tick = [enabled for ticks, enabled in seen if ticks == 0]
    begun = first_tick.index(False)  # once the loop has started its first tick
    assert True not in first_tick[begun:]
    assert True in {enabled for ticks, enabled in seen if ticks == 1}  # later ones
    passes = [e for e in logs if e["event"] == "monitor.full_collection"]
    # one after each finished tick (the one stop interrupted may not have had its turn)
    assert len(passes) >= events.count("sync.tick_finished") - 1 >= 1
    assert all(e["pause_ms"] >= 0 for e in passes)
    assert events.index("sync.tick_finished") < events.index("monitor.full_collection")
    assert not collector.is_deferred
    assert (gc.get_threshold(), gc.isenabled()) == (saved, was_enabled)


async def test_stop_during_the_first_tick_turns_the_collector_back_on(
    fake: FakeUpstream,
) -> None:
    fake.faults["folder/app"] = Fault.HANG  # the first tick cannot end before stop
    saved, was_enabled = gc.get_threshold(), gc.isenabled()
    monitor = _monitor(fake, collector=Collector())
    try:
        await monitor.start()
        await asyncio.sleep(0.1)
        assert not gc.isenabled()
        await monitor.stop()
        assert (gc.get_threshold(), gc.isenabled()) == (saved, was_enabled)
    finally:
        gc.set_threshold(*saved)
        if was_enabled:
            gc.enable()


async def test_without_targets_the_collector_is_left_alone() -> None:
    saved = gc.get_threshold()
    monitor = Monitor(MonitorSettings(), ENV, collector=Collector())
    await monitor.start()
    assert gc.get_threshold() == saved
    await monitor.stop()
    assert gc.get_threshold() == saved
