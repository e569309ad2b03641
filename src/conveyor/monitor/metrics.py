"""Prometheus instruments of one Monitor, in its own CollectorRegistry (never the global one,
so two monitors in one process, as in tests, do not collide).

The sync loop and the HTTP boundary record into it; `server.metrics` renders it. The health
figures (`monitor.health`) and the rate-limit gates are read at scrape time by collectors, so
a sync pays nothing for them and "time since" is as of the scrape. Label values are target
keys, provider names, status words and failure kinds: never a URL, a header or an upstream
body.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from conveyor.model import Status
from conveyor.monitor.cache import CacheEntry
from conveyor.monitor.health import Health, seconds_since

__all__ = ["MonitorMetrics"]


class MonitorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._gates: _GateCollector | None = None
        self._health: _HealthCollector | None = None
        self._entries: _EntryCollector | None = None
        # (provider, code) -> requests counter child; (provider, "") -> rate-limit gauge child
        self._children: dict[tuple[str, str], Any] = {}
        r = self.registry
        self.last_sync = Gauge(
            "conveyor_monitor_last_sync_timestamp_seconds", "End of the last sync tick", registry=r
        )
        self.sync_duration = Gauge(
            "conveyor_monitor_last_sync_duration_seconds", "Wall time of the last tick", registry=r
        )
        self.sync_errors = Counter(
            "conveyor_monitor_sync_errors",
            "Failed target fetches by target and kind",
            ["key", "kind"],
            registry=r,
        )
        self.upstream_requests = Counter(
            "conveyor_monitor_upstream_requests",
            "Upstream requests by provider and answer (HTTP status or failure kind)",
            ["provider", "code"],
            registry=r,
        )
        self.rate_limit_remaining = Gauge(
            "conveyor_monitor_rate_limit_remaining",
            "Requests left in the upstream's rate-limit window, as last reported",
            ["provider"],
            registry=r,
        )
        self.dropped_records = Counter(
            "conveyor_monitor_dropped_records",
            "Upstream records dropped because they failed validation",
            ["provider"],
            registry=r,
        )

        self.hook_events = Counter(
            "conveyor_monitor_hook_events",
            "Upstream webhook events by provider and outcome (started, queued, coalesced, "
            "ignored, unknown_target, rejected)",
            ["provider", "outcome"],
            registry=r,
        )

    def watch_gates(
        self, gates: Callable[[], Mapping[str, datetime]], clock: Callable[[], datetime]
    ) -> None:
        """Export the upstream's rate-limit gates (`provider:base_url` -> reset time) as
        `conveyor_monitor_rate_limited_until_timestamp_seconds{provider,host}`, read at
        scrape time: the reset time while closed, 0 once open."""
        if self._gates is None:  # a restarted Monitor watches its new Upstream
            self._gates = _GateCollector(gates, clock)
            self.registry.register(self._gates)
        self._gates.gates, self._gates.clock = gates, clock

    def watch_health(
        self,
        healths: Callable[[], Mapping[str, Health]],
        providers: Mapping[str, str],
        clock: Callable[[], datetime],
    ) -> None:
        """Export each target's health figures (`healths()`: key -> Health; `providers`:
        key -> provider), read at scrape time."""
        if self._health is None:
            self._health = _HealthCollector(healths, providers, clock)
            self.registry.register(self._health)

    def watch_entries(self, entries: Callable[[], Iterable[CacheEntry]]) -> None:
        """Export each cache entry's latest status, last duration and staleness, read at
        scrape time (the entries are the truth; a sync records nothing for them)."""
        if self._entries is None:
            self._entries = _EntryCollector(entries)
            self.registry.register(self._entries)

    def record_response(self, provider: str, code: str, headers: Mapping[str, str]) -> None:
        # labels() costs microseconds (validation, a lock): children are looked up once.
        counter = self._children.get((provider, code))
        if counter is None:
            counter = self.upstream_requests.labels(provider, code)
            self._children[(provider, code)] = counter
        counter.inc()
        remaining = headers.get("x-ratelimit-remaining") or headers.get("ratelimit-remaining")
        if remaining is not None and remaining.strip().isascii() and remaining.strip().isdigit():
            gauge = self._children.get((provider, ""))
            if gauge is None:
                gauge = self._children[(provider, "")] = self.rate_limit_remaining.labels(provider)
            gauge.set(int(remaining))


class _GateCollector(Collector):
    def __init__(
        self, gates: Callable[[], Mapping[str, datetime]], clock: Callable[[], datetime]
    ) -> None:
        self.gates = gates
        self.clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "conveyor_monitor_rate_limited_until_timestamp_seconds",
            "While an upstream host (or token) rate-limits conveyor: when it allows the next "
            "request (every target on it waits); 0 once it does",
            labels=["provider", "host"],
        )
        now = self.clock()
        for gate, reset_at in sorted(self.gates().items()):
            provider, _, base_url = gate.partition(":")
            host = urlsplit(base_url).netloc  # base URLs never carry credentials
            family.add_metric([provider, host], reset_at.timestamp() if reset_at > now else 0)
        yield family

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())


class _HealthCollector(Collector):
    """Per target (labels `key`, `provider`), absent while it has no finished pipeline:
    the success ratio, the duration summary (median as quantile 0.5, sum, count), the end of
    the newest success and the time since it, and the mean time to recovery."""

    def __init__(
        self,
        healths: Callable[[], Mapping[str, Health]],
        providers: Mapping[str, str],
        clock: Callable[[], datetime],
    ) -> None:
        self.healths = healths
        self.providers = providers
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        labels = ["key", "provider"]
        finished = GaugeMetricFamily(
            "conveyor_monitor_finished_pipelines",
            "Kept pipelines that finished success or failed: what the health figures cover",
            labels=labels,
        )
        ratio = GaugeMetricFamily(
            "conveyor_monitor_success_ratio",
            "Share of the kept finished pipelines that succeeded (0 to 1)",
            labels=labels,
        )
        duration = Metric(
            "conveyor_monitor_pipeline_duration_seconds",
            "Durations of the kept finished pipelines (quantile 0.5: the median)",
            "summary",
        )
        last_success = GaugeMetricFamily(
            "conveyor_monitor_last_success_timestamp_seconds",
            "When the newest kept successful pipeline ended",
            labels=labels,
        )
        since = GaugeMetricFamily(
            "conveyor_monitor_time_since_last_success_seconds",
            "Seconds from the end of the newest kept successful pipeline to this scrape",
            labels=labels,
        )
        mttr = GaugeMetricFamily(
            "conveyor_monitor_mttr_seconds",
            "Mean time to recovery over the kept pipelines: from a failure that turned the "
            "target red to the next success",
            labels=labels,
        )
        now = self.clock()
        for key, health in sorted(self.healths().items()):
            if not health.finished:
                continue
            values = [key, self.providers.get(key, "")]
            named = dict(zip(labels, values, strict=True))
            finished.add_metric(values, health.finished)
            if health.success_ratio is not None:
                ratio.add_metric(values, health.success_ratio)
            if health.median_duration_s is not None:
                name = duration.name
                duration.add_sample(name, {**named, "quantile": "0.5"}, health.median_duration_s)
                duration.add_sample(name + "_sum", named, health.duration_sum_s)
                duration.add_sample(name + "_count", named, health.durations)
            if health.last_success_at is not None:
                last_success.add_metric(values, health.last_success_at.timestamp())
                since.add_metric(values, seconds_since(health.last_success_at, now) or 0.0)
            if health.mttr_s is not None:
                mttr.add_metric(values, health.mttr_s)
        yield from (finished, ratio, duration, last_success, since, mttr)

    def describe(self) -> Iterator[Metric]:
        return iter(())


class _EntryCollector(Collector):
    """From the cache entries, at scrape time: `conveyor_pipeline_status{key,provider,status}`
    (1 for the latest pipeline's status, 0 for the others; absent without pipelines),
    `conveyor_pipeline_last_duration_seconds{key,provider}` (the newest pipeline with a
    duration) and `conveyor_monitor_entry_stale{key}`."""

    def __init__(self, entries: Callable[[], Iterable[CacheEntry]]) -> None:
        self.entries = entries

    def collect(self) -> Iterator[Metric]:
        status = GaugeMetricFamily(
            "conveyor_pipeline_status",
            "1 for the status of the target's latest pipeline, 0 for the others",
            labels=["key", "provider", "status"],
        )
        duration = GaugeMetricFamily(
            "conveyor_pipeline_last_duration_seconds",
            "Duration of the target's latest finished pipeline",
            labels=["key", "provider"],
        )
        stale = GaugeMetricFamily(
            "conveyor_monitor_entry_stale", "1 when the target's entry is stale", labels=["key"]
        )
        for entry in self.entries():
            stale.add_metric([entry.key], int(entry.is_stale))
            latest = entry.latest
            if latest is None:
                continue
            for word in _STATUS_WORDS:
                status.add_metric([entry.key, entry.provider, word], int(word == latest.status))
            finished = next((p for p in entry.pipelines if p.duration_s is not None), None)
            if finished is not None and finished.duration_s is not None:
                duration.add_metric([entry.key, entry.provider], finished.duration_s)
        yield from (status, duration, stale)

    def describe(self) -> Iterator[Metric]:
        return iter(())


_STATUS_WORDS = tuple(str(s) for s in Status)
