"""One sync tick: fetch every target with bounded concurrency, each under its own deadline,
and put the outcome into the cache; or one target's refresh on an upstream event.

A successful fetch also goes into the target's history (`monitor.history`: only new or
changed pipelines are kept and queued for the store, and only then are its health figures
computed again). A target's failure (any UpstreamError, its deadline, or a bug caught by
the per-target guard) never delays or fails another: its entry keeps the last good
pipelines, becomes stale and carries a short sanitized reason. This module does no
scheduling (service.py owns the loop) and never logs a URL, a header or an upstream body.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime

import structlog

from conveyor.errors import UpstreamError
from conveyor.monitor.cache import Cache, make_entry
from conveyor.monitor.health import NO_HEALTH
from conveyor.monitor.history import History
from conveyor.monitor.metrics import MonitorMetrics
from conveyor.monitor.providers.base import Fetched, Memo, Provider
from conveyor.settings.monitor import Target

__all__ = ["Syncer", "TickReport", "failure_kind"]

log = structlog.get_logger(__name__)


class TickReport:
    """What one tick did: wall time and failures by target key (kind, reason)."""

    __slots__ = ("duration_s", "failures")

    def __init__(self, duration_s: float, failures: dict[str, tuple[str, str]]) -> None:
        self.duration_s = duration_s
        self.failures = failures


def failure_kind(exc: UpstreamError) -> str:
    """A metric label for a failure: `http_502`, `timeout`, `rate_limited`, `bad_payload`…"""
    if type(exc) is UpstreamError and exc.status_code is not None:
        return f"http_{exc.status_code}"
    if type(exc) is UpstreamError:
        return "connection"
    return exc.kind


class Syncer:
    def __init__(
        self,
        targets: Sequence[Target],
        providers: Mapping[str, Provider],
        cache: Cache,
        metrics: MonitorMetrics,
        history: History,
        *,
        concurrency: int,
        timeout_s: float,
        clock: Callable[[], datetime],
    ) -> None:
        self.targets = tuple(targets)
        self.providers = providers
        self.cache = cache
        self.metrics = metrics
        self.history = history
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.clock = clock
        self.memos: dict[str, Memo] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._refresh_gate = asyncio.Semaphore(concurrency)  # event refreshes, all targets
        self.failures_so_far: dict[str, tuple[str, str]] = {}  # of the running or last tick

    async def tick(self, *, spread_s: float = 0.0) -> TickReport:
        """Fetch every target once: `concurrency` workers take the targets in order. With
        `spread_s`, target i is not started before i/len(targets) of it has passed since
        the tick began (the fetches spread evenly over it); else each as soon as a worker
        is free."""
        started = time.perf_counter()
        failures: dict[str, tuple[str, str]] = {}
        self.failures_so_far = failures
        loop = asyncio.get_running_loop()
        begun = loop.time()
        step_s = spread_s / len(self.targets) if self.targets else 0.0
        queue = enumerate(self.targets)  # shared by the workers: each takes the next one

        async def work() -> None:
            for index, target in queue:
                wait_s = begun + index * step_s - loop.time()
                if wait_s > 0:
                    await asyncio.sleep(wait_s)
                await self._sync_target(target, failures)

        async with asyncio.TaskGroup() as group:
            for _ in range(min(self.concurrency, len(self.targets))):
                group.create_task(work())
        self.cache.publish()
        duration_s = time.perf_counter() - started
        self.metrics.sync_duration.set(duration_s)
        self.metrics.last_sync.set(self.clock().timestamp())
        log.info(
            "sync.tick_finished",
            targets=len(self.targets),
            failed=len(failures),
            duration_s=round(duration_s, 3),
        )
        return TickReport(duration_s, failures)

    async def refresh(self, target: Target) -> None:
        """Fetch one target now (an upstream event said it changed); the lists show it
        from their next read. Its failure only touches its entry, as in a tick."""
        async with self._refresh_gate:
            await self._sync_target(target, {})
        self.cache.mark_changed()

    async def _sync_target(self, target: Target, failures: dict[str, tuple[str, str]]) -> None:
        # One fetch per target at a time (tick or event refresh): a slower, older answer
        # must not overwrite a newer one, and both would race on the memo.
        lock = self._locks.get(target.key)
        if lock is None:
            lock = self._locks[target.key] = asyncio.Lock()
        async with lock:
            provider = self.providers[target.provider]
            memo = self.memos.get(target.key) or self._memo_from_cache(target.key)
            try:
                async with asyncio.timeout(self.timeout_s):
                    fetched = await provider.fetch(target, memo)
            except TimeoutError:
                self._fail(target, "timeout", f"timeout after {self.timeout_s:g}s", failures)
            except UpstreamError as exc:
                self._fail(target, failure_kind(exc), exc.reason, failures)
            except Exception:  # the per-target guard: one target's bug spares the others
                log.error(
                    "sync.target_crashed",
                    provider=target.provider,
                    target=target.key,
                    exc_info=True,
                )
                self._fail(target, "internal", "internal error", failures)
            else:
                self._succeed(target, fetched)

    def _memo_from_cache(self, key: str) -> Memo:
        entry = self.cache.get(key)
        return Memo(pipelines=entry.pipelines) if entry is not None else Memo()

    def _succeed(self, target: Target, fetched: Fetched) -> None:
        previous = self.cache.get(target.key)
        pipelines, memo = fetched.pipelines, fetched.memo
        if previous is not None and pipelines == previous.pipelines:
            # Unchanged (most fetches): keep the objects already held, so the fresh copies
            # die young instead of piling up for the cyclic collector's full passes.
            pipelines = previous.pipelines
            if memo.pipelines is not pipelines:
                memo = replace(memo, pipelines=pipelines)
        else:
            self.history.merge(target.key, target.provider, pipelines)
        self.memos[target.key] = memo
        entry = make_entry(
            provider=target.provider,
            repo=target.repo,
            branch=target.branch,
            pipelines=pipelines,
            fetched_at=self.clock(),
            error=None,
            is_stale=False,
            health=self.history.health(target.key),
            like=previous,
        )
        self.cache.put(entry)
        if fetched.dropped:
            self.metrics.dropped_records.labels(target.provider).inc(fetched.dropped)
            log.warning(
                "sync.records_dropped",
                provider=target.provider,
                target=target.key,
                count=fetched.dropped,
            )

    def _fail(
        self, target: Target, kind: str, reason: str, failures: dict[str, tuple[str, str]]
    ) -> None:
        failures[target.key] = (kind, reason)
        previous = self.cache.get(target.key)
        self.cache.put(
            make_entry(
                provider=target.provider,
                repo=target.repo,
                branch=target.branch,
                pipelines=previous.pipelines if previous else (),
                fetched_at=previous.fetched_at if previous else None,
                error=reason,
                is_stale=True,
                health=previous.health if previous else NO_HEALTH,
                like=previous,
            )
        )
        self.metrics.sync_errors.labels(target.key, kind).inc()
        log.warning(
            "sync.target_failed",
            provider=target.provider,
            target=target.key,
            kind=kind,
            error=reason,
        )
