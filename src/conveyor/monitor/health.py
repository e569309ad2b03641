"""Health figures of one monitor target, computed from its kept pipeline history.

Owns what the figures mean (docs/monitor.md, "History and health"): over the kept pipelines
that finished `success` or `failed` (canceled, skipped and running ones are neither green nor
red), the success ratio, the median duration, the newest success, and the mean time to
recovery (from a failed pipeline that ended a green streak, or opened the window, to the
next success: end to end). Pure: no clock (callers pass `now`), no I/O.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from conveyor.model import Status
from conveyor.records import format_ts
from conveyor.store.base import HistoryRecord

__all__ = [
    "NO_HEALTH",
    "Health",
    "compute_health",
    "health_to_dict",
    "pipeline_duration_s",
    "seconds_since",
]

_SETTLED = (Status.SUCCESS, Status.FAILED)


@dataclass(frozen=True, slots=True)
class Health:
    """`kept`: pipelines in the history; `finished`: those the figures cover (success or
    failed); `durations` of them have a known duration, summing to `duration_sum_s`;
    `recoveries`: how many red streaks ended green (the mean of their lengths: `mttr_s`)."""

    kept: int
    finished: int
    success_ratio: float | None
    durations: int
    duration_sum_s: float
    median_duration_s: float | None
    last_success_at: datetime | None
    recoveries: int
    mttr_s: float | None


NO_HEALTH = Health(0, 0, None, 0, 0.0, None, None, 0, None)


def pipeline_duration_s(record: HistoryRecord) -> float | None:
    """End minus start (its creation when the upstream gives no start); None while it has
    no end. Never negative (upstream clocks differ)."""
    begun = record.started_at or record.created_at
    if record.finished_at is None or begun is None:
        return None
    return max(0.0, (record.finished_at - begun).total_seconds())


def _ended_at(record: HistoryRecord) -> datetime | None:
    return record.finished_at or record.created_at


def compute_health(records: Iterable[HistoryRecord]) -> Health:
    """The figures of one target's records (any order; ordered here by pipeline id, which
    upstreams hand out in creation order)."""
    kept = sorted(records, key=lambda r: r.pipeline_id)
    settled = [r for r in kept if r.status in _SETTLED]
    if not settled:
        return Health(len(kept), 0, None, 0, 0.0, None, None, 0, None)
    successes = [r for r in settled if r.status == Status.SUCCESS]
    durations = tuple(d for d in map(pipeline_duration_s, settled) if d is not None)
    recoveries = _recovery_times_s(settled)
    return Health(
        kept=len(kept),
        finished=len(settled),
        success_ratio=len(successes) / len(settled),
        durations=len(durations),
        duration_sum_s=math.fsum(durations),
        median_duration_s=statistics.median(durations) if durations else None,
        last_success_at=_ended_at(successes[-1]) if successes else None,
        recoveries=len(recoveries),
        mttr_s=statistics.fmean(recoveries) if recoveries else None,
    )


def _recovery_times_s(settled: list[HistoryRecord]) -> list[float]:
    """For each red streak followed by a success: the success's end minus the end of the
    streak's first failure (streaks whose times are unknown are left out)."""
    times: list[float] = []
    red_since: datetime | None = None
    is_red = False
    for record in settled:
        if record.status == Status.FAILED and not is_red:
            is_red, red_since = True, _ended_at(record)
        elif record.status == Status.SUCCESS and is_red:
            green_at = _ended_at(record)
            if red_since is not None and green_at is not None:
                times.append(max(0.0, (green_at - red_since).total_seconds()))
            is_red, red_since = False, None
    return times


def seconds_since(moment: datetime | None, now: datetime) -> float | None:
    return None if moment is None else max(0.0, (now - moment).total_seconds())


def health_to_dict(health: Health) -> dict[str, Any]:
    """The `health` object of an entry's JSON (docs/api.md)."""
    return {
        "kept": health.kept,
        "finished": health.finished,
        "success_ratio": health.success_ratio,
        "median_duration_s": health.median_duration_s,
        "last_success_at": format_ts(health.last_success_at),
        "recoveries": health.recoveries,
        "mttr_s": health.mttr_s,
    }
