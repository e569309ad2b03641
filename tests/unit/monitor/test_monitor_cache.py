"""Cache entries: allow-listed JSON serialized once, ttl staleness, snapshots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from conveyor.model import Status
from conveyor.monitor.cache import (
    RESTORED_ERROR,
    Cache,
    entry_from_snapshot,
    entry_to_dict,
    make_entry,
)
from conveyor.monitor.validate import Invalid, PipelineView
from conveyor.store.base import MonitorSnapshot

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
VIEW = PipelineView(5, Status.FAILED, "main", "c" * 40, "https://x.example/5", T0, T0, 12.5)
VIEW2 = PipelineView(4, Status.SUCCESS, "main", None, "https://x.example/4", T0, None, None)


def _entry(
    provider: str = "gitlab",
    repo: str = "g/app",
    fetched_at: datetime | None = T0,
    stale: bool = False,
):  # type: ignore[no-untyped-def]
    return make_entry(
        provider=provider,
        repo=repo,
        branch="main",
        pipelines=(VIEW,),
        fetched_at=fetched_at,
        error="upstream 502" if stale else None,
        is_stale=stale,
    )


def test_entry_body_is_the_contract_shape() -> None:
    expected = {
        "key": "g/app@main",
        "provider": "gitlab",
        "repo": "g/app",
        "branch": "main",
        "pipelines": [
            {
                "id": 5,
                "status": "failed",
                "ref": "main",
                "sha": "c" * 40,
                "web_url": "https://x.example/5",
                "created_at": "2026-11-23T12:00:00.000Z",
                "updated_at": "2026-11-23T12:00:00.000Z",
                "duration_s": 12.5,
            }
        ],
        "fetched_at": "2026-11-23T12:00:00.000Z",
        "stale": False,
        "error": None,
        "health": {
            "kept": 0,
            "finished": 0,
            "success_ratio": None,
            "median_duration_s": None,
            "last_success_at": None,
            "recoveries": 0,
            "mttr_s": None,
        },
    }
    entry = _entry()
    assert expected == orjson.loads(entry.body)
    assert {**expected, "stale": True} == orjson.loads(entry.stale_body)


def test_cache_body_turns_stale_after_ttl() -> None:
    now = [T0]
    cache = Cache(ttl_s=60, clock=lambda: now[0])
    cache.load([_entry()])
    fresh = orjson.loads(cache.body("g/app@main") or b"")["stale"]
    now[0] = T0 + timedelta(seconds=61)
    assert (fresh, orjson.loads(cache.body("g/app@main") or b"")["stale"]) == (False, True)
    assert [e["stale"] for e in orjson.loads(cache.list_body())] == [True]


def test_cache_lists_per_provider_in_target_order() -> None:
    cache = Cache(ttl_s=60, clock=lambda: T0)
    cache.load([_entry(repo="b"), _entry("github", repo="o/r"), _entry(repo="a")])
    keys = [e["key"] for e in orjson.loads(cache.list_body())]
    github = [e["key"] for e in orjson.loads(cache.list_body("github"))]
    assert (keys, github) == (["b@main", "o/r@main", "a@main"], ["o/r@main"])
    assert cache.list_body("jenkins") == b"[]"
    assert cache.body("missing@main") is None


def test_cache_publish_bumps_version_and_put_replaces() -> None:
    cache = Cache(ttl_s=60, clock=lambda: T0)
    cache.load([_entry()])
    version = cache.version
    cache.put(_entry(stale=True))
    cache.publish()
    assert (version + 1, True) == (cache.version, cache.get("g/app@main").is_stale)  # type: ignore[union-attr]


def test_an_entry_made_like_its_predecessor_serializes_as_if_made_anew() -> None:
    tricky = 'g/\\","pipelines":[],"fetched_at":"x'  # quotes, backslashes, the marks
    first = make_entry(
        provider="gitlab", repo=tricky, branch="main", pipelines=(VIEW, VIEW2),
        fetched_at=T0, error=None, is_stale=False,
    )  # fmt: skip
    later = T0 + timedelta(seconds=30)
    for error, stale in ((None, False), ("upstream 502", True)):
        reused = make_entry(
            provider="gitlab", repo=tricky, branch="main", pipelines=first.pipelines,
            fetched_at=later, error=error, is_stale=stale, like=first,
        )  # fmt: skip
        assert reused.body == orjson.dumps(entry_to_dict(reused))
        assert orjson.loads(reused.body)["repo"] == tricky


def test_only_entries_showing_something_new_are_unsaved() -> None:
    cache = Cache(ttl_s=60, clock=lambda: T0)
    first = _entry()
    cache.load([first])  # restored or not fetched yet: nothing to save
    assert cache.take_unsaved() == []
    later = T0 + timedelta(seconds=30)
    same = make_entry(
        provider="gitlab", repo="g/app", branch="main", pipelines=first.pipelines,
        fetched_at=later, error=None, is_stale=False, like=first,
    )  # fmt: skip
    cache.put(same)
    assert cache.take_unsaved() == []  # only fetched_at moved
    failed = _entry(fetched_at=later, stale=True)
    cache.put(failed)
    assert cache.take_unsaved() == [failed]
    assert cache.take_unsaved() == []
    cache.mark_unsaved(["g/app@main", "gone@main"])  # a failed write gives them back
    assert cache.take_unsaved() == [failed]


def test_mark_changed_rebuilds_the_lists_once_on_the_next_read() -> None:
    cache = Cache(ttl_s=60, clock=lambda: T0)
    cache.load([_entry()])
    version = cache.version
    cache.put(_entry(stale=True))
    assert orjson.loads(cache.list_body())[0]["stale"] is False  # not published yet
    cache.mark_changed()
    cache.mark_changed()
    assert cache.version == version + 2  # readers keyed on it (cc.xml) see the change at once
    listed = cache.list_body()
    assert orjson.loads(listed)[0]["stale"] is True
    assert cache.list_body() is listed  # rebuilt once, then served as built


def test_snapshot_round_trip_is_stale_until_refreshed() -> None:
    entry = _entry()
    naive = T0.replace(tzinfo=None)  # SQLite hands back naive datetimes
    restored = entry_from_snapshot(MonitorSnapshot(entry.key, "gitlab", entry.body, naive))
    assert (entry.pipelines, T0, True, RESTORED_ERROR) == (
        restored.pipelines,
        restored.fetched_at,
        restored.is_stale,
        restored.error,
    )


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"[]",
        b'{"pipelines": [{"id": 1}], "repo": "r", "branch": "b"}',
        b'{"pipelines": [], "repo": 1, "branch": "b"}',
    ],
)
def test_snapshot_that_is_not_an_entry_is_invalid(data: bytes) -> None:
    with pytest.raises(Invalid):
        entry_from_snapshot(MonitorSnapshot("r@b", "gitlab", data, T0))


def test_stale_body_marks_only_the_entry_itself_stale() -> None:
    tricky = '"stale":false'
    entry = _entry(repo=f"g/{tricky}")
    marked = orjson.loads(entry.stale_body)
    assert (marked["stale"], marked["repo"]) == (True, f"g/{tricky}")
    assert {**orjson.loads(entry.body), "stale": True} == marked
