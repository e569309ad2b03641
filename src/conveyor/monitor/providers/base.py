"""What every provider (GitLab, GitHub, Jenkins) offers the sync loop, and what they share.

A provider is pure `parse_*` functions (payload -> PipelineView) plus a thin client that
sends its requests through `monitor.upstream.Upstream`. `Memo` is what a provider remembers
between two fetches of one target (ETag, updated-after watermark, last good pipelines) so an
unchanged upstream costs one cheap request. Nothing here touches the network itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from conveyor.model import Status
from conveyor.monitor.validate import Invalid, PipelineView
from conveyor.settings.monitor import Target

__all__ = [
    "PER_PAGE",
    "SHOWN_STATUSES",
    "Fetched",
    "Memo",
    "Provider",
    "keep_shown",
    "parse_records",
]

PER_PAGE = 5
# What the monitor shows: settled or running pipelines (canceled ones only when configured).
SHOWN_STATUSES = frozenset({Status.RUNNING, Status.SUCCESS, Status.FAILED})


@dataclass(frozen=True, slots=True)
class Memo:
    """Per-target memory between fetches; `pipelines` are the last good ones, `digest` that
    of the answer they came from (for upstreams without ETags)."""

    etag: str | None = None
    watermark: datetime | None = None
    pipelines: tuple[PipelineView, ...] = ()
    digest: bytes | None = None


@dataclass(frozen=True, slots=True)
class Fetched:
    """The outcome of one successful fetch: validated pipelines, newest first, how many
    upstream records were dropped as invalid, and the memo for the next fetch."""

    pipelines: tuple[PipelineView, ...]
    dropped: int
    memo: Memo
    not_modified: bool = False


class Provider(Protocol):
    name: str

    async def fetch(self, target: Target, memo: Memo) -> Fetched:
        """The latest pipelines of `target`; raises UpstreamError on any failure."""
        ...

    async def retry(self, target: Target, latest: PipelineView | None) -> None:
        """Ask the upstream for a new pipeline / run / build of `target`."""
        ...


def parse_records(
    items: Any, parse_one: Callable[[Any], PipelineView]
) -> tuple[list[PipelineView], int]:
    """Parse a JSON list of records; invalid ones are dropped and counted, never served.
    Raises Invalid when the value is not a list or when every record is invalid."""
    if not isinstance(items, list):
        raise Invalid("expected a list of records")
    views: list[PipelineView] = []
    dropped = 0
    for item in items:
        try:
            if not isinstance(item, dict):
                raise Invalid("record is not an object")
            views.append(parse_one(item))
        except Invalid:
            dropped += 1
    if dropped and not views:
        # Serving nothing would hide the last good pipelines: fail the fetch instead.
        raise Invalid(f"all {dropped} records failed validation")
    return views, dropped


def keep_shown(
    views: Iterable[PipelineView], *, include_canceled: bool, limit: int = PER_PAGE
) -> tuple[PipelineView, ...]:
    """Shown statuses only, one per id (the first seen wins), newest first (by creation),
    at most `limit`."""
    shown = SHOWN_STATUSES | ({Status.CANCELED} if include_canceled else set())
    by_id: dict[int, PipelineView] = {}
    for view in views:
        by_id.setdefault(view.id, view)
    kept = [v for v in by_id.values() if v.status in shown]
    kept.sort(key=lambda v: (v.created_at or v.updated_at or _EPOCH, v.id), reverse=True)
    return tuple(kept[:limit])


_EPOCH = datetime.fromisoformat("1970-01-01T00:00:00+00:00")
