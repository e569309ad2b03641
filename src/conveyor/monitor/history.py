"""Each monitor target's pipeline history in memory: what the history route pages through,
what the health figures are computed from, and what is still to be written to the store.

`History.merge(key, provider, pipelines)` takes a fetch's validated pipelines and keeps the
new or changed ones (a running pipeline that finished is changed), at most `keep` per target
(the highest ids). Only then are that target's figures computed again and its records queued
for the store (`take_pending`); an unchanged fetch costs a few comparisons. `load` restores
what the store kept at start. Pure state: no I/O, no clock; `monitor.service` writes the
pending records off the event loop.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from conveyor.monitor.health import NO_HEALTH, Health, compute_health
from conveyor.monitor.validate import PipelineView
from conveyor.store.base import HistoryRecord

__all__ = ["History", "record_from_view"]


def record_from_view(key: str, provider: str, view: PipelineView) -> HistoryRecord:
    return HistoryRecord(
        key=key,
        provider=provider,
        pipeline_id=view.id,
        status=view.status,
        sha=view.sha,
        web_url=view.web_url,
        created_at=view.created_at,
        started_at=view.started_at,
        finished_at=view.finished_at,
    )


class History:
    """`keep`: pipelines kept per target. `is_saved`: queue changes for the store (a Monitor
    without a store keeps none)."""

    def __init__(self, *, keep: int, is_saved: bool = True) -> None:
        self.keep = keep
        self.is_saved = is_saved
        self._records: dict[str, dict[int, HistoryRecord]] = {}  # key -> id -> record
        self._newest_first: dict[str, tuple[HistoryRecord, ...]] = {}
        self._health: dict[str, Health] = {}
        self._pending: dict[tuple[str, int], HistoryRecord] = {}

    def load(self, records: Iterable[HistoryRecord], watched: Mapping[str, str]) -> int:
        """Restore stored records of the watched targets (`watched`: key -> provider; a
        record of another provider under the same key is left out). Returns how many."""
        count = 0
        for record in records:
            if watched.get(record.key) != record.provider:
                continue
            self._records.setdefault(record.key, {})[record.pipeline_id] = record
            count += 1
        for key in self._records:
            self._settle(key)
        return count

    def merge(self, key: str, provider: str, pipelines: Sequence[PipelineView]) -> bool:
        """Keep the new or changed pipelines of one fetch; True when anything changed."""
        known = self._records.setdefault(key, {})
        changed: list[HistoryRecord] = []
        for view in pipelines:
            record = record_from_view(key, provider, view)
            if known.get(view.id) != record:
                known[view.id] = record
                changed.append(record)
        if not changed:
            return False
        self._settle(key)
        if self.is_saved:
            kept = self._records[key]
            for record in changed:
                if record.pipeline_id in kept:  # not trimmed at once (an old pipeline)
                    self._pending[(key, record.pipeline_id)] = record
        return True

    def _settle(self, key: str) -> None:
        """Trim `key` to the newest `keep` and compute its figures again."""
        records = self._records[key]
        newest = sorted(records.values(), key=lambda r: r.pipeline_id, reverse=True)
        if len(newest) > self.keep:
            for record in newest[self.keep :]:
                del records[record.pipeline_id]
            newest = newest[: self.keep]
        self._newest_first[key] = tuple(newest)
        self._health[key] = compute_health(newest)

    def records(self, key: str) -> tuple[HistoryRecord, ...]:
        """The kept pipelines of `key`, newest first."""
        return self._newest_first.get(key, ())

    def health(self, key: str) -> Health:
        return self._health.get(key, NO_HEALTH)

    def healths(self) -> dict[str, Health]:
        """Every target's figures (a copy: the scrape iterates it while the sync runs)."""
        return dict(self._health)

    def take_pending(self) -> list[HistoryRecord]:
        """The records changed since the last call, for one store write."""
        pending = list(self._pending.values())
        self._pending.clear()
        return pending

    def give_back(self, records: Iterable[HistoryRecord]) -> None:
        """Records whose write failed: queued again unless a newer change replaced them."""
        for record in records:
            self._pending.setdefault((record.key, record.pipeline_id), record)
