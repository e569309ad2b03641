"""The monitor's routes over a real fake upstream: entry shape, keys with slashes, the error
envelope, provider filter, retry for each provider (Jenkins re-crumbs once), ETag and
updated_after on later syncs, metrics, cc.xml, ttl, snapshots and the loop."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree

import pytest
from tests.fakes.memory_store import MemoryRunStore
from tests.fakes.upstreams import FakeUpstream, Fault
from tests.fakes.upstreams.scenario import ENV, open_api_client, targets_for

from conveyor.monitor.service import Monitor
from conveyor.settings.monitor import MonitorSettings

ENTRY_KEYS = {
    "key",
    "provider",
    "repo",
    "branch",
    "pipelines",
    "fetched_at",
    "stale",
    "error",
    "health",
}


def _monitor(fake: FakeUpstream, **settings: object) -> Monitor:
    merged: dict[str, object] = {"targets": targets_for(fake.url), "timeout": 2.0, **settings}
    return Monitor(MonitorSettings.model_validate(merged), ENV, retry_wait_s=0.01)


async def test_pipelines_entry_has_the_contract_shape(fake: FakeUpstream) -> None:
    monitor = _monitor(fake)
    await monitor.sync_once()
    async with open_api_client(monitor) as client:
        response = await client.get("/api/v1/pipelines/group/sub/app@main")
    await monitor.stop()
    entry = response.json()
    assert (response.status_code, response.headers["content-type"]) == (200, "application/json")
    assert set(entry) == ENTRY_KEYS
    assert (
        entry["key"],
        entry["provider"],
        entry["stale"],
        entry["error"],
    ) == ("group/sub/app@main", "gitlab", False, None)
    assert [p["id"] for p in entry["pipelines"]] == [1004, 1003, 1002, 1001]


async def test_pipelines_list_filters_by_provider(fake: FakeUpstream) -> None:
    monitor = _monitor(fake)
    await monitor.sync_once()
    async with open_api_client(monitor) as client:
        all_keys = [e["key"] for e in (await client.get("/api/v1/pipelines")).json()]
        github = (await client.get("/api/v1/pipelines", params={"provider": "github"})).json()
        bad = await client.get("/api/v1/pipelines", params={"provider": "svn"})
    await monitor.stop()
    assert all_keys == [
        "group/sub/app@main",
        "group/other@main",
        "octo/api@main",
        "folder/app@main",
    ]
    assert [e["key"] for e in github] == ["octo/api@main"]
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "bad_request")


async def test_pipelines_unknown_key_is_404_envelope(fake: FakeUpstream) -> None:
    monitor = _monitor(fake)
    async with open_api_client(monitor) as client:
        response = await client.get("/api/v1/pipelines/nope/x@main")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_pipelines_read_needs_token(fake: FakeUpstream) -> None:
    monitor = _monitor(fake)
    async with open_api_client(monitor) as client:
        response = await client.get("/api/v1/pipelines", headers={"Authorization": ""})
    assert response.status_code == 401


async def test_pipelines_before_first_sync_are_stale_and_empty(fake: FakeUpstream) -> None:
    monitor = _monitor(fake)
    async with open_api_client(monitor) as client:
        entry = (await client.get("/api/v1/pipelines/octo/api@main")).json()
    assert (
        entry["pipelines"],
        entry["stale"],
        entry["error"],
        entry["fetched_at"],
    ) == ([], True, "not fetched yet", None)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("group/other@main", ("gitlab", "group/other")),
        ("octo/api@main", ("github", "octo/api#5003")),
        ("folder/app@main", ("jenkins", "folder/app/main")),
    ],
)
async def test_retry_asks_the_upstream(
    fake: FakeUpstream, key: str, expected: tuple[str, str]
) -> None:
    monitor = _monitor(fake)
    await monitor.sync_once()
    async with open_api_client(monitor) as client:
        response = await client.post(f"/api/v1/pipelines/{key}/retry")
    await monitor.stop()
    assert (202, {"key": key, "requested": True}) == (response.status_code, response.json())
    assert [expected] == fake.retries


async def test_retry_needs_write_token(fake: FakeUpstream) -> None:
    monitor = _monitor(fake)
    async with open_api_client(monitor) as client:
        response = await client.post(
            "/api/v1/pipelines/octo/api@main/retry", headers={"Authorization": "Bearer wrong"}
        )
    assert (response.status_code, fake.retries) == (401, [])


async def test_retry_jenkins_refetches_an_expired_crumb_once(fake: FakeUpstream) -> None:
    monitor = _monitor(fake)
    async with open_api_client(monitor) as client:
        first = await client.post("/api/v1/pipelines/folder/app@main/retry")
        fake.expire_crumbs()
        second = await client.post("/api/v1/pipelines/folder/app@main/retry")
    await monitor.stop()
    posts = [r.headers.get("cookie", "") for r in fake.requests if r.method == "POST"]
    assert (first.status_code, second.status_code) == (202, 202)
    assert len(fake.requests_to("/crumbIssuer/")) == 2
    assert len(posts) == 3 and posts[1] == posts[0] != posts[2]
    assert all(p.startswith("JSESSIONID.fake=") for p in posts)


async def test_retry_upstream_failure_is_502_envelope(fake: FakeUpstream) -> None:
    monitor = _monitor(fake)
    await monitor.sync_once()
    fake.faults["octo/api"] = Fault.HTTP_502
    async with open_api_client(monitor) as client:
        response = await client.post("/api/v1/pipelines/octo/api@main/retry")
    await monitor.stop()
    error = response.json()["error"]
    assert (response.status_code, error["code"]) == (502, "upstream_error")
    assert error["message"] == "octo/api@main: the upstream refused (upstream 502)."
    assert fake.retries == []


async def test_sync_second_tick_uses_etag_and_updated_after(fake: FakeUpstream) -> None:
    monitor = _monitor(fake)
    await monitor.sync_once()
    first_fetched = monitor.cache.get("octo/api@main").fetched_at  # type: ignore[union-attr]
    count = len(fake.requests)
    await monitor.sync_once()
    await monitor.stop()
    second = fake.requests[count:]
    github = next(r for r in second if r.path.startswith("/repos/"))
    gitlab = next(r for r in second if r.path.startswith("/api/v4/"))
    entry = monitor.cache.get("octo/api@main")
    assert github.headers["if-none-match"].startswith('"')
    assert gitlab.query["updated_after"] == "2026-11-23T12:07:00Z"
    assert entry is not None and not entry.is_stale and entry.fetched_at > first_fetched
    assert len(monitor.cache.get("octo/api@main").pipelines) == 3  # type: ignore[union-attr]


async def test_sync_new_gitlab_pipeline_merges_with_known_ones(fake: FakeUpstream) -> None:
    from tests.fakes.upstreams.apis import gitlab_pipeline

    monitor = _monitor(fake)
    await monitor.sync_once()
    fake.gitlab["group/sub/app"].insert(0, gitlab_pipeline(9, status="running"))
    await monitor.sync_once()
    await monitor.stop()
    pipelines = monitor.cache.get("group/sub/app@main").pipelines  # type: ignore[union-attr]
    assert [p.id for p in pipelines] == [1009, 1004, 1003, 1002, 1001]


async def test_concurrent_sync_once_is_one_tick(fake: FakeUpstream) -> None:
    monitor = _monitor(fake)
    await asyncio.gather(monitor.sync_once(), monitor.sync_once(), monitor.sync_once())
    await monitor.stop()
    assert len(fake.requests) == 4


async def test_ttl_marks_old_entries_stale(fake: FakeUpstream) -> None:
    now = [datetime(2026, 11, 23, 13, 0, tzinfo=UTC)]
    settings = MonitorSettings(targets=targets_for(fake.url), ttl=60)
    monitor = Monitor(settings, ENV, clock=lambda: now[0])
    await monitor.sync_once()
    async with open_api_client(monitor) as client:
        fresh = (await client.get("/api/v1/pipelines/octo/api@main")).json()["stale"]
        now[0] += timedelta(seconds=61)
        old = (await client.get("/api/v1/pipelines/octo/api@main")).json()["stale"]
        listed = {e["stale"] for e in (await client.get("/api/v1/pipelines")).json()}
    await monitor.stop()
    assert (False, True, {True}) == (fresh, old, listed)


async def test_restart_serves_snapshots_stale_until_refreshed(fake: FakeUpstream) -> None:
    store = MemoryRunStore()
    first = Monitor(MonitorSettings(targets=targets_for(fake.url)), ENV, store)
    await first.sync_once()
    await first.stop()
    fake.faults["octo/api"] = Fault.HANG
    second = Monitor(MonitorSettings(targets=targets_for(fake.url), timeout=0.3), ENV, store)
    await second.start()
    async with open_api_client(second) as client:
        restored = (await client.get("/api/v1/pipelines/octo/api@main")).json()
        await second.sync_once()
        after = {e["key"]: e for e in (await client.get("/api/v1/pipelines")).json()}
    await second.stop()
    assert (
        len(restored["pipelines"]),
        restored["stale"],
        restored["error"],
    ) == (3, True, "not refreshed since restart")
    assert after["group/other@main"]["stale"] is False
    assert (len(after["octo/api@main"]["pipelines"]), after["octo/api@main"]["stale"]) == (3, True)


async def test_loop_refreshes_on_its_tick(fake: FakeUpstream) -> None:
    monitor = _monitor(fake, interval=0.05, jitter=0)
    await monitor.start()
    for _ in range(200):
        if len(fake.requests_to("/repos/")) >= 3:
            break
        await asyncio.sleep(0.025)
    await monitor.stop()
    ticks = len(fake.requests_to("/repos/"))
    await asyncio.sleep(0.2)
    assert ticks >= 3
    assert ticks == len(fake.requests_to("/repos/"))


async def test_metrics_expose_status_requests_and_sync(fake: FakeUpstream) -> None:
    monitor = _monitor(fake)
    await monitor.sync_once()
    async with open_api_client(monitor) as client:
        response = await client.get("/metrics")
    await monitor.stop()
    text = response.text
    assert response.headers["content-type"].startswith("text/plain")
    assert (
        'conveyor_pipeline_status{key="folder/app@main",provider="jenkins",status="running"} 1.0'
        in text
    )
    assert 'conveyor_monitor_upstream_requests_total{code="200",provider="gitlab"} 2.0' in text
    assert 'conveyor_monitor_rate_limit_remaining{provider="github"} 4999.0' in text
    assert (
        'conveyor_pipeline_last_duration_seconds{key="octo/api@main",provider="github"} 120.0'
        in text
    )
    assert "conveyor_monitor_last_sync_duration_seconds " in text


async def test_cctray_lists_every_target(fake: FakeUpstream) -> None:
    monitor = _monitor(fake)
    await monitor.sync_once()
    async with open_api_client(monitor) as client:
        response = await client.get("/cc.xml")
    await monitor.stop()
    root = ElementTree.fromstring(response.content)  # noqa: S314 - our own output
    projects = {p.get("name"): p.attrib for p in root}
    assert len(projects) == 4
    assert (
        projects["folder/app@main"]["activity"],
        projects["folder/app@main"]["lastBuildStatus"],
        projects["folder/app@main"]["lastBuildLabel"],
    ) == ("Building", "Failure", "1")
    assert (
        projects["group/other@main"]["activity"],
        projects["group/other@main"]["lastBuildStatus"],
    ) == ("Sleeping", "Success")


async def test_a_spread_tick_starts_its_targets_evenly_over_the_spread(
    fake: FakeUpstream,
) -> None:
    monitor = _monitor(fake, interval=30, timeout=8)
    try:
        assert monitor.spread_s() == 22.0  # 3/4 of the interval, ending a timeout before
        burst = await monitor.sync_once()
        spread = await monitor.sync_once(spread_s=0.8)
    finally:
        await monitor.stop()
    # Four targets: the last one starts 3/4 of the way, at 0.6 s; a burst takes no wait.
    assert burst.duration_s < 0.6 <= spread.duration_s
    assert not spread.failures
    unspread = _monitor(fake, interval=30, spread=False)
    assert unspread.spread_s() == 0.0
