"""The Monitor: targets, providers, cache, metrics and the sync loop of one server.

`Monitor(settings, env, store)` resolves targets and their secrets at once (a missing or
implausible token is a ConfigError at startup). `start()` restores the targets' pipeline
history and the last snapshots from the store (served at once, stale until refreshed) and
starts the loop; after each tick or event fetch the history's new or changed pipelines are
written in one batch off the event loop (`_save_history`), and after each tick the
snapshots of the entries that changed (`_save_snapshots`); `stop()` ends it, writes every
entry's snapshot and closes the HTTP client. `refresh(target)` fetches one target at once
(upstream webhooks). The loop runs ticks one after another, so a slow tick is never
doubled: a due tick that falls inside a running one is skipped. The first tick fetches
every target as fast as `concurrency` allows; later ones spread their fetches over most of
the interval (`monitor.spread`), which keeps the upstream request rate and the server's CPU
flat.
`sync_once()` joins a tick already running rather than starting a second. Request handlers
only read `cache`. Answers pass a turnstile (`monitor.turnstile`) before they are handled,
one per loop iteration. Given the process's `Collector` (`conveyor serve`), the cyclic
garbage collector is paused during the first tick, which builds every entry, whose objects
are then frozen out of its way (`monitor.collector`).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Protocol

import structlog

from conveyor.errors import StoreError, UpstreamError, UpstreamTimeout
from conveyor.monitor.cache import Cache, entry_from_snapshot, make_entry, with_health
from conveyor.monitor.collector import Collector
from conveyor.monitor.history import History
from conveyor.monitor.metrics import MonitorMetrics
from conveyor.monitor.providers.base import Provider
from conveyor.monitor.providers.github import GitHub
from conveyor.monitor.providers.gitlab import GitLab
from conveyor.monitor.providers.jenkins import Jenkins
from conveyor.monitor.refresh import Refresh, Refresher
from conveyor.monitor.sync import Syncer, TickReport
from conveyor.monitor.turnstile import Turnstile
from conveyor.monitor.upstream import Upstream, open_monitor_client, retry_policy
from conveyor.monitor.validate import Invalid
from conveyor.outbound.base import HttpClient
from conveyor.settings.monitor import MonitorSettings, Target, resolve_targets
from conveyor.store.base import MonitorHistory, MonitorSnapshot, MonitorSnapshots

__all__ = ["NOT_FETCHED", "Monitor", "MonitorStore"]

log = structlog.get_logger(__name__)
NOT_FETCHED = "not fetched yet"
HISTORY_CHUNK = 2000  # history records per store write
# The first tick's pause of the collector ends early after this many failed fetches (about
# 150 objects of cyclic garbage each), or when it made more new tracked objects than a
# healthy tick (about 16 per target; the floor: what the rest of the server allocates
# meanwhile) (`monitor.collector`).
PAUSE_BUDGET_PER_TARGET = 24
PAUSE_BUDGET_FLOOR = 20_000
PAUSE_MAX_FAILURES = 64  # failed fetches that end the pause (about 10,000 objects of garbage)
PAUSE_CHECK_S = 0.05


class MonitorStore(MonitorSnapshots, MonitorHistory, Protocol):
    """The store concerns a Monitor uses: snapshots of its entries, its targets' history."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Monitor:
    def __init__(
        self,
        settings: MonitorSettings,
        env: Mapping[str, str],
        store: MonitorStore | None = None,
        *,
        clock: Callable[[], datetime] = _utc_now,
        retry_wait_s: float = 0.2,
        collector: Collector | None = None,
        pause_budget: int | None = None,
    ) -> None:
        self.settings = settings
        self.collector = collector
        # New objects the first tick may make with the collector paused (`monitor.collector`)
        self.pause_budget = (
            pause_budget
            if pause_budget is not None
            else PAUSE_BUDGET_FLOOR + PAUSE_BUDGET_PER_TARGET * len(settings.targets)
        )
        self.targets: tuple[Target, ...] = resolve_targets(settings, env)
        self.by_key = {t.key: t for t in self.targets}
        self.store = store
        self.clock = clock
        self.retry_wait_s = retry_wait_s
        self.metrics = MonitorMetrics()
        self.history = History(keep=settings.history_limit, is_saved=store is not None)
        self._history_lock = asyncio.Lock()
        self.metrics.watch_health(self.history.healths, self._providers_by_key(), clock)
        self.cache = Cache(ttl_s=settings.ttl, clock=clock)
        self.metrics.watch_entries(self.cache.entries)
        self.cache.load(
            make_entry(
                provider=t.provider,
                repo=t.repo,
                branch=t.branch,
                pipelines=(),
                fetched_at=None,
                error=NOT_FETCHED,
                is_stale=True,
            )
            for t in self.targets
        )
        self.last_report: TickReport | None = None
        self._client: HttpClient | None = None
        self._providers: dict[str, Provider] = {}
        self._syncer: Syncer | None = None
        self._refresher: Refresher | None = None
        self._tick: asyncio.Task[TickReport] | None = None
        self._loop: asyncio.Task[None] | None = None
        self._pause_watch: asyncio.Task[None] | None = None  # the first tick's (`_run_loop`)

    def _ensure_syncer(self) -> Syncer:
        if self._syncer is None:
            # A few slots beyond the tick's concurrency keep retry requests from waiting.
            self._client = open_monitor_client(
                self.settings.concurrency + 4,
                timeout_s=self.settings.timeout,
                max_body_bytes=self.settings.max_body_bytes,
            )
            upstream = Upstream(
                self._client,
                clock=self.clock,
                on_response=self.metrics.record_response,
                retry=retry_policy(self.settings.timeout, self.retry_wait_s),
                turnstile=Turnstile(),
            )
            self.metrics.watch_gates(upstream.gates, self.clock)
            canceled = self.settings.include_canceled
            self._providers = {
                "gitlab": GitLab(upstream, include_canceled=canceled),
                "github": GitHub(upstream, include_canceled=canceled),
                "jenkins": Jenkins(upstream, include_canceled=canceled),
            }
            self._syncer = Syncer(
                self.targets,
                self._providers,
                self.cache,
                self.metrics,
                self.history,
                concurrency=self.settings.concurrency,
                timeout_s=self.settings.timeout,
                clock=self.clock,
            )
        return self._syncer

    def _ensure_refresher(self) -> Refresher:
        if self._refresher is None:
            self._refresher = Refresher(self._refresh_target, min_gap_s=self.settings.hook_min_gap)
        return self._refresher

    async def start(self) -> None:
        await self._restore_history()
        await self._restore_snapshots()
        self._loop = asyncio.create_task(self._run_loop(), name="conveyor-monitor-loop")
        log.info("monitor.started", targets=len(self.targets), interval_s=self.settings.interval)

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            await asyncio.gather(self._loop, return_exceptions=True)
            self._loop = None
        if self.collector is not None:
            self.collector.resume()
        if self._pause_watch is not None:
            self._pause_watch.cancel()
            await asyncio.gather(self._pause_watch, return_exceptions=True)
            self._pause_watch = None
        if self._tick is not None and not self._tick.done():
            self._tick.cancel()
            await asyncio.gather(self._tick, return_exceptions=True)
        if self._refresher is not None:
            await self._refresher.aclose()
            self._refresher = None
        if self.last_report is not None:  # something was fetched since start
            await self._save_snapshots(every_entry=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None
            self._syncer = None

    async def sync_once(self, *, spread_s: float = 0.0) -> TickReport:
        """Run one tick (its fetches spread over `spread_s`), or wait for the one already
        running."""
        if self._tick is None or self._tick.done():
            self._tick = asyncio.create_task(self._ensure_syncer().tick(spread_s=spread_s))
        report = await asyncio.shield(self._tick)
        self.last_report = report
        await self._save_history()
        await self._save_snapshots()
        return report

    async def _refresh_target(self, target: Target) -> None:
        await self._ensure_syncer().refresh(target)
        await self._save_history()

    def refresh(self, target: Target) -> Refresh:
        """Fetch `target` now (an upstream event said it changed), in the background:
        de-duplicated and rate-limited per target (`monitor.refresh`)."""
        outcome = self._ensure_refresher().request(target)
        log.info("monitor.refresh_requested", target=target.key, outcome=str(outcome))
        return outcome

    async def retry(self, key: str) -> None:
        """Ask the upstream of target `key` for a new pipeline. KeyError when unknown;
        UpstreamError (sanitized) when the upstream refuses or does not answer in time."""
        target = self.by_key[key]
        self._ensure_syncer()
        entry = self.cache.get(key)
        try:
            async with asyncio.timeout(self.settings.timeout):
                await self._providers[target.provider].retry(
                    target, entry.latest if entry else None
                )
        except TimeoutError as exc:
            raise UpstreamTimeout(f"timeout after {self.settings.timeout:g}s") from exc
        except UpstreamError as exc:
            log.warning("monitor.retry_failed", target=key, kind=exc.kind, error=exc.reason)
            raise
        log.info("monitor.retry_requested", provider=target.provider, target=key)

    def spread_s(self) -> float:
        """How long a tick after the first spreads its fetches (`monitor.spread`): three
        quarters of the interval, ending at least `timeout` before the next tick."""
        if not self.settings.spread:
            return 0.0
        interval = self.settings.interval
        return max(0.0, min(0.75 * interval, interval - self.settings.timeout))

    async def _run_loop(self) -> None:
        interval = self.settings.interval
        rng = random.Random()  # noqa: S311 - tick jitter, not cryptography
        spread_s = 0.0  # the first tick fetches everything at once: nothing is known yet
        # The first tick builds every entry: the collector pauses for it (`monitor.collector`)
        collector = self.collector if self.targets else None
        if collector is not None:
            collector.pause(budget=self.pause_budget)
            self._pause_watch = asyncio.create_task(self._end_pause_over_budget(collector))
        while True:
            started = asyncio.get_running_loop().time()
            try:
                await self.sync_once(spread_s=spread_s)
            except Exception:  # the loop must outlive any one tick's bug
                log.error("monitor.tick_crashed", exc_info=True)
            if collector is not None:
                self._settle_first_tick(collector)
                collector = None
            elapsed = asyncio.get_running_loop().time() - started
            # Skip due ticks that fell inside this one instead of running them back to back.
            delay = interval - (elapsed % interval) + rng.uniform(0, self.settings.jitter)
            spread_s = self.spread_s()
            await asyncio.sleep(delay)

    def _settle_first_tick(self, collector: Collector) -> None:
        """Its objects out of the collector's way; a full pass first if it made garbage: a
        fetch failed, the tick crashed, or its pause ended early (collections ran). The
        watch over the pause ends on its own once the collector runs again."""
        made_garbage = (
            self.last_report is None or bool(self.last_report.failures) or not collector.is_paused
        )
        pause_s = collector.settle(collect=made_garbage)
        log.info(
            "monitor.first_tick_settled", collected=made_garbage, pause_ms=round(pause_s * 1000, 1)
        )

    async def _end_pause_over_budget(self, collector: Collector) -> None:
        """Collect again once the paused first tick fails fetches (each leaves cyclic
        garbage) or made more objects than its entries need; over when it is resumed."""
        while collector.is_paused:
            failed = len(self._syncer.failures_so_far) if self._syncer is not None else 0
            if failed >= PAUSE_MAX_FAILURES or collector.is_over_budget():
                collector.resume()
                log.info("monitor.collector_resumed", failed_fetches=failed)
                return
            await asyncio.sleep(PAUSE_CHECK_S)

    async def _restore_snapshots(self) -> None:
        if self.store is None:
            return
        try:
            snapshots = await asyncio.to_thread(self.store.load_snapshots)
        except StoreError as exc:
            log.warning("monitor.snapshots_unreadable", error=str(exc))
            return
        restored = []
        for snapshot in snapshots:
            target = self.by_key.get(snapshot.key)
            if target is None or target.provider != snapshot.provider:
                continue
            try:
                restored.append(entry_from_snapshot(snapshot, self.history.health(target.key)))
            except Invalid:
                log.warning("monitor.snapshot_dropped", target=snapshot.key)
        self.cache.load(restored)
        log.info("monitor.snapshots_restored", count=len(restored))

    def _providers_by_key(self) -> dict[str, str]:
        return {t.key: t.provider for t in self.targets}

    async def _restore_history(self) -> None:
        """Load the kept pipelines (before the snapshots, whose entries show their figures);
        entries not restored from a snapshot show them at once too."""
        if self.store is None:
            return
        try:
            records = await asyncio.to_thread(self.store.load_history)
        except StoreError as exc:
            log.warning("monitor.history_unreadable", error=str(exc))
            return
        count = self.history.load(records, self._providers_by_key())
        self.cache.load(
            with_health(entry, self.history.health(entry.key))
            for entry in self.cache.entries()
            if self.history.records(entry.key)
        )
        log.info("monitor.history_restored", pipelines=count)

    async def _save_history(self) -> None:
        """Write the history's new or changed pipelines off the event loop, a transaction per
        chunk; one write at a time, in order. A failed write queues the rest again."""
        if self.store is None:
            return
        async with self._history_lock:
            pending = self.history.take_pending()
            # In chunks: a first sync of 10,000 targets queues 50,000 records, whose
            # statement parameters at once would add tens of MB to the server's peak.
            for start in range(0, len(pending), HISTORY_CHUNK):
                chunk = pending[start : start + HISTORY_CHUNK]
                try:
                    await asyncio.to_thread(
                        self.store.save_history, chunk, keep=self.settings.history_limit
                    )
                except StoreError as exc:
                    left = pending[start:]
                    self.history.give_back(left)
                    log.warning("monitor.history_unsaved", pipelines=len(left), error=str(exc))
                    return

    async def _save_snapshots(self, *, every_entry: bool = False) -> None:
        """Snapshots of the entries that changed since the last write (after a tick), or of
        every entry (at stop, so a restart shows each target's last `fetched_at`). An
        unchanged entry is not written again each tick: at 10,000 targets that was 15 MB
        every interval. After a crash, an unchanged target's restored `fetched_at` is when
        its entry last changed."""
        if self.store is None:
            return
        entries = self.cache.entries() if every_entry else self.cache.take_unsaved()
        snapshots = [
            MonitorSnapshot(e.key, e.provider, e.body, e.fetched_at)
            for e in entries
            if e.fetched_at is not None
        ]
        try:
            await asyncio.to_thread(self.store.save_snapshots, snapshots)
        except StoreError as exc:
            self.cache.mark_unsaved(s.key for s in snapshots)
            log.warning("monitor.snapshots_unsaved", error=str(exc))
