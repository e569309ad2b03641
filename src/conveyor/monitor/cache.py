"""The monitor cache: immutable entries keyed `repo@branch`, their JSON serialized once.

`CacheEntry` holds validated pipelines, the target's health figures (`monitor.health`,
computed when its history changed) and its pre-serialized body (as fetched; marked stale
when it outlives `monitor.ttl`); `Cache` maps keys to entries and keeps the list
bodies (all, and per provider) ready, so a request handler only looks up bytes. Only the
allow-listed fields of DESIGN's entry shape are ever serialized. Snapshots for the store
are the same JSON. Pure apart from the injected clock: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from conveyor.model import Status
from conveyor.monitor.health import NO_HEALTH, Health, health_to_dict
from conveyor.monitor.validate import (
    Invalid,
    PipelineView,
    check_id,
    check_ref,
    check_sha,
    check_time,
    check_url,
)
from conveyor.records import format_ts
from conveyor.store.base import MonitorSnapshot

__all__ = [
    "RESTORED_ERROR",
    "Cache",
    "CacheEntry",
    "entry_from_snapshot",
    "entry_to_dict",
    "make_entry",
    "pipeline_to_dict",
    "with_health",
]

RESTORED_ERROR = "not refreshed since restart"
_FRESH, _STALE = b'"stale":false', b'"stale":true'


@dataclass(frozen=True, slots=True)
class CacheEntry:
    key: str
    provider: str
    repo: str
    branch: str
    pipelines: tuple[PipelineView, ...]
    fetched_at: datetime | None
    error: str | None
    is_stale: bool
    health: Health
    body: bytes

    @property
    def stale_body(self) -> bytes:
        """The body marked stale, made when asked (an entry outlives the ttl rarely; keeping
        both bodies cost 20 MB at 10,000 targets). The one `"stale":false` in the body is the
        entry's own: within a JSON string every quote is escaped."""
        return self.body if self.is_stale else self.body.replace(_FRESH, _STALE, 1)

    @property
    def latest(self) -> PipelineView | None:
        return self.pipelines[0] if self.pipelines else None


def pipeline_to_dict(view: PipelineView) -> dict[str, Any]:
    return {
        "id": view.id,
        "status": str(view.status),
        "ref": view.ref,
        "sha": view.sha,
        "web_url": view.web_url,
        "created_at": format_ts(view.created_at),
        "updated_at": format_ts(view.updated_at),
        "duration_s": view.duration_s,
    }


def entry_to_dict(entry: CacheEntry, *, stale: bool | None = None) -> dict[str, Any]:
    return _entry_dict(entry, [pipeline_to_dict(p) for p in entry.pipelines], stale)


def _entry_dict(entry: CacheEntry, pipelines: object, stale: bool | None = None) -> dict[str, Any]:
    return {
        "key": entry.key,
        "provider": entry.provider,
        "repo": entry.repo,
        "branch": entry.branch,
        "pipelines": pipelines,
        "fetched_at": format_ts(entry.fetched_at),
        "stale": entry.is_stale if stale is None else stale,
        "error": entry.error,
        "health": health_to_dict(entry.health),
    }


def make_entry(
    *,
    provider: str,
    repo: str,
    branch: str,
    pipelines: tuple[PipelineView, ...],
    fetched_at: datetime | None,
    error: str | None,
    is_stale: bool,
    health: Health = NO_HEALTH,
    like: CacheEntry | None = None,
) -> CacheEntry:
    """An entry with its body serialized now, once. `like`: the target's previous entry;
    when it holds these very pipelines, their JSON is taken from its body (most fetches
    find nothing new)."""
    entry = CacheEntry(
        f"{repo}@{branch}",
        provider,
        repo,
        branch,
        pipelines,
        fetched_at,
        error,
        is_stale,
        health,
        b"",
    )
    if like is not None and like.pipelines is pipelines:
        return replace(entry, body=orjson.dumps(_entry_dict(entry, _pipelines_json(like))))
    return replace(entry, body=orjson.dumps(entry_to_dict(entry)))


def _shows_otherwise(old: CacheEntry, new: CacheEntry) -> bool:
    return (
        new.pipelines != old.pipelines  # the same tuple when unchanged: an identity check
        or new.error != old.error
        or new.is_stale != old.is_stale
        or (new.health is not old.health and new.health != old.health)
    )


_PIPELINES_AT, _PIPELINES_END = b'"pipelines":', b',"fetched_at":'


def _pipelines_json(entry: CacheEntry) -> orjson.Fragment:
    """The entry's serialized pipelines, cut from its body. The keys come in `_entry_dict`'s
    order, and neither mark can occur inside a JSON string (each ends in an unescaped quote
    after a letter; in a string every quote is escaped), so each is found once, as a key."""
    start = entry.body.index(_PIPELINES_AT) + len(_PIPELINES_AT)
    return orjson.Fragment(entry.body[start : entry.body.index(_PIPELINES_END, start)])


def with_health(entry: CacheEntry, health: Health) -> CacheEntry:
    """The same entry showing other figures (serialized again)."""
    return make_entry(
        provider=entry.provider,
        repo=entry.repo,
        branch=entry.branch,
        pipelines=entry.pipelines,
        fetched_at=entry.fetched_at,
        error=entry.error,
        is_stale=entry.is_stale,
        health=health,
    )


def entry_from_snapshot(snapshot: MonitorSnapshot, health: Health = NO_HEALTH) -> CacheEntry:
    """A saved entry, re-validated, marked stale until the next successful fetch, with the
    figures of the target's restored history. Raises Invalid when the snapshot is not an
    entry this version can serve."""
    try:
        data = orjson.loads(snapshot.data_json)
    except orjson.JSONDecodeError as exc:
        raise Invalid("snapshot is not JSON") from exc
    if not isinstance(data, dict) or not isinstance(data.get("pipelines"), list):
        raise Invalid("snapshot is not an entry")
    pipelines = tuple(_pipeline_from_dict(p) for p in data["pipelines"])
    repo, branch = data.get("repo"), data.get("branch")
    if not isinstance(repo, str) or not isinstance(branch, str):
        raise Invalid("snapshot lacks repo or branch")
    error = data.get("error")
    return make_entry(
        provider=snapshot.provider,
        repo=repo,
        branch=branch,
        pipelines=pipelines,
        fetched_at=_aware(snapshot.fetched_at),
        error=error if isinstance(error, str) else RESTORED_ERROR,
        is_stale=True,
        health=health,
    )


def _aware(moment: datetime) -> datetime:
    # Some stores (SQLite) hand back naive datetimes; conveyor only ever stores UTC.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _pipeline_from_dict(item: Any) -> PipelineView:
    if not isinstance(item, dict):
        raise Invalid("snapshot pipeline is not an object")
    duration = item.get("duration_s")
    try:
        status = Status(str(item.get("status")))
    except ValueError as exc:
        raise Invalid("unknown status") from exc
    return PipelineView(
        id=check_id(item.get("id")),
        status=status,
        ref=check_ref(item.get("ref")),
        sha=None if item.get("sha") is None else check_sha(item.get("sha")),
        web_url=check_url(item.get("web_url")),
        created_at=check_time(item.get("created_at")),
        updated_at=check_time(item.get("updated_at")),
        duration_s=float(duration) if isinstance(duration, int | float) else None,
    )


class Cache:
    """Entries in target order. `put` replaces one entry; `publish` rebuilds the list
    bodies once per tick; `mark_changed` (one entry fetched between ticks) has them rebuilt
    when next asked, so a burst of event refreshes costs one rebuild, not one per event.
    Readers see either the old or the new object, never a mix."""

    def __init__(self, *, ttl_s: float, clock: Callable[[], datetime]) -> None:
        self.ttl = timedelta(seconds=ttl_s)
        self.clock = clock
        self.version = 0
        self._entries: dict[str, CacheEntry] = {}
        self._lists: dict[str | None, bytes] = {None: b"[]"}
        self._expires_at: datetime | None = None
        self._lists_outdated = False
        self._unsaved: set[str] = set()  # keys whose entry changed beyond its fetched_at

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> CacheEntry | None:
        return self._entries.get(key)

    def entries(self) -> tuple[CacheEntry, ...]:
        return tuple(self._entries.values())

    def is_expired(self, entry: CacheEntry, now: datetime) -> bool:
        return entry.fetched_at is None or now - entry.fetched_at >= self.ttl

    def body(self, key: str) -> bytes | None:
        """The entry's JSON; the stale variant once it is older than the ttl."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        return entry.stale_body if self.is_expired(entry, self.clock()) else entry.body

    def list_body(self, provider: str | None = None) -> bytes:
        if self._lists_outdated or (
            self._expires_at is not None and self.clock() >= self._expires_at
        ):
            self.publish()
        return self._lists.get(provider, b"[]")

    def put(self, entry: CacheEntry) -> None:
        old = self._entries.get(entry.key)
        self._entries[entry.key] = entry
        if old is None or _shows_otherwise(old, entry):
            self._unsaved.add(entry.key)

    def take_unsaved(self) -> list[CacheEntry]:
        """The entries put since the last call that show something else than before (not
        only a later `fetched_at`): what the store's snapshots lack."""
        keys, self._unsaved = self._unsaved, set()
        return [self._entries[key] for key in keys]

    def mark_unsaved(self, keys: Iterable[str]) -> None:
        """Entries whose snapshot write failed: taken again next time."""
        self._unsaved.update(key for key in keys if key in self._entries)

    def mark_changed(self) -> None:
        """Entries changed outside a tick: readers of `version` see it at once, the list
        bodies are rebuilt on the next `list_body`."""
        self._lists_outdated = True
        self.version += 1

    def load(self, entries: Iterable[CacheEntry]) -> None:
        """Entries that need no saving (restored from the store, or not fetched yet)."""
        for entry in entries:
            self._entries[entry.key] = entry
        self.publish()

    def publish(self) -> None:
        now = self.clock()
        bodies: dict[str | None, list[bytes]] = {None: []}
        expires: list[datetime] = []
        for entry in self._entries.values():
            expired = self.is_expired(entry, now)
            if not expired and not entry.is_stale and entry.fetched_at is not None:
                expires.append(entry.fetched_at + self.ttl)
            body = entry.stale_body if expired else entry.body
            bodies[None].append(body)
            bodies.setdefault(entry.provider, []).append(body)
        self._lists = {name: b"[" + b",".join(parts) + b"]" for name, parts in bodies.items()}
        self._expires_at = min(expires, default=None)
        self._lists_outdated = False
        self.version += 1
