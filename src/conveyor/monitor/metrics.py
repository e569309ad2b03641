"""Prometheus instruments of one Monitor, in its own CollectorRegistry (never the global one,
so two monitors in one process, as in tests, do not collide).

The sync loop and the HTTP boundary record into it; `server.metrics` renders it. Label
values are target keys, provider names, status words and failure kinds: never a URL, a
header or an upstream body.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from conveyor.model import Status

__all__ = ["MonitorMetrics"]


class MonitorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._gates: _GateCollector | None = None
        r = self.registry
        self.pipeline_status = Gauge(
            "conveyor_pipeline_status",
            "1 for the status of the target's latest pipeline, 0 for the others",
            ["key", "provider", "status"],
            registry=r,
        )
        self.pipeline_duration = Gauge(
            "conveyor_pipeline_last_duration_seconds",
            "Duration of the target's latest finished pipeline",
            ["key", "provider"],
            registry=r,
        )
        self.entry_stale = Gauge(
            "conveyor_monitor_entry_stale",
            "1 when the target's entry is stale",
            ["key"],
            registry=r,
        )
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

    def record_response(self, provider: str, code: str, headers: Mapping[str, str]) -> None:
        self.upstream_requests.labels(provider, code).inc()
        remaining = headers.get("x-ratelimit-remaining") or headers.get("ratelimit-remaining")
        if remaining is not None and remaining.strip().isascii() and remaining.strip().isdigit():
            self.rate_limit_remaining.labels(provider).set(int(remaining))

    def record_pipelines(
        self,
        key: str,
        provider: str,
        statuses: Iterable[Status],
        latest: Status | None,
        duration_s: float | None,
    ) -> None:
        for status in statuses:
            self.pipeline_status.labels(key, provider, str(status)).set(int(status == latest))
        if duration_s is not None:
            self.pipeline_duration.labels(key, provider).set(duration_s)


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
