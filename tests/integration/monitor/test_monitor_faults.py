"""Every way an upstream misbehaves leaves the API answering 200 with valid JSON, the last
good pipelines, `stale: true` and a sanitized error, without touching other targets and
without a secret in any response or log line."""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest
from structlog.testing import capture_logs
from tests.fakes.upstreams import FAKE_LEAKS, FakeUpstream, Fault
from tests.fakes.upstreams.scenario import ENV, TOKENS, open_api_client, targets_for

from conveyor.monitor.service import Monitor
from conveyor.settings.monitor import MonitorSettings

TIMEOUT_S = 0.5
FAULTS = [
    (Fault.HTTP_502, "group/sub/app@main", r"^upstream 502$"),
    (Fault.HTTP_503, "octo/api@main", r"^upstream 503$"),
    (Fault.RATE_LIMIT, "octo/api@main", r"^rate limited until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"),
    (Fault.HANG, "folder/app@main", r"^timeout after 0\.5s$"),
    (Fault.RESET, "group/sub/app@main", r"^connection failed$"),
    (Fault.HTML, "folder/app@main", r"^invalid JSON$"),
    (Fault.TRUNCATED, "octo/api@main", r"^invalid JSON$"),
    (Fault.HUGE, "group/sub/app@main", r"^response too large$"),
    (Fault.BAD_SHA, "octo/api@main", r"^invalid payload: all 3 records failed validation$"),
    (Fault.BAD_REF, "folder/app@main", r"^invalid payload: all 2 records failed validation$"),
]


def _monitor(fake: FakeUpstream) -> Monitor:
    settings = MonitorSettings(targets=targets_for(fake.url), timeout=TIMEOUT_S, concurrency=4)
    return Monitor(settings, ENV, retry_wait_s=0.01)


def _assert_no_secret(text: str) -> None:
    for secret in (*TOKENS, *FAKE_LEAKS):
        assert secret not in text


async def _entries(client: Any) -> dict[str, dict[str, Any]]:
    response = await client.get("/api/v1/pipelines")
    assert response.status_code == 200
    _assert_no_secret(response.text)
    return {e["key"]: e for e in orjson.loads(response.content)}


@pytest.mark.parametrize(("fault", "key", "error"), FAULTS, ids=[f[0].name for f in FAULTS])
async def test_sync_fault_keeps_last_good_data_stale(
    fake: FakeUpstream, fault: Fault, key: str, error: str
) -> None:
    monitor = _monitor(fake)
    async with open_api_client(monitor) as client:
        with capture_logs() as logs:
            await monitor.sync_once()
            before = await _entries(client)
            fake.faults[key.split("@")[0]] = fault
            await monitor.sync_once()
            after = await _entries(client)
            one = await client.get(f"/api/v1/pipelines/{key}")
            metrics = (await client.get("/metrics")).text
            cc = (await client.get("/cc.xml")).text
    await monitor.stop()
    assert one.status_code == 200
    assert after[key] == orjson.loads(one.content)
    assert before[key]["pipelines"] == after[key]["pipelines"]
    assert after[key]["pipelines"]
    assert after[key]["stale"] is True
    assert re.match(error, after[key]["error"]), after[key]["error"]
    same_gate = {k for k in after if fault == Fault.RATE_LIMIT and k.startswith("octo/")}
    for other in set(after) - {key} - same_gate:
        assert after[other]["stale"] is False, other
        assert after[other]["error"] is None
    _assert_no_secret(repr(logs) + metrics + cc)


async def test_sync_hanging_target_does_not_delay_others(fake: FakeUpstream) -> None:
    fake.faults["folder/app"] = Fault.HANG
    monitor = _monitor(fake)
    report = await monitor.sync_once()
    await monitor.stop()
    assert {"folder/app@main"} == set(report.failures)
    assert report.duration_s < TIMEOUT_S + 0.4


async def test_sync_rate_limited_provider_sends_nothing_until_reset(fake: FakeUpstream) -> None:
    fake.faults["octo/api"] = Fault.RATE_LIMIT
    monitor = _monitor(fake)
    await monitor.sync_once()
    sent = len(fake.requests_to("/repos/"))
    await monitor.sync_once()
    await monitor.stop()
    assert (sent, len(fake.requests_to("/repos/"))) == (1, 1)
    assert monitor.last_report.failures["octo/api@main"][0] == "rate_limited"  # type: ignore[union-attr]


async def test_sync_secret_fields_never_leave(fake: FakeUpstream) -> None:
    for repo in ("group/sub/app", "octo/api", "folder/app"):
        fake.faults[repo] = Fault.SECRETS
    monitor = _monitor(fake)
    async with open_api_client(monitor) as client:
        with capture_logs() as logs:
            await monitor.sync_once()
            entries = await _entries(client)
            texts = [(await client.get(p)).text for p in ("/metrics", "/cc.xml")]
    await monitor.stop()
    assert all(not e["stale"] for e in entries.values())
    allowed = {"id", "status", "ref", "sha", "web_url", "created_at", "updated_at", "duration_s"}
    assert all(set(p) == allowed for e in entries.values() for p in e["pipelines"])
    _assert_no_secret(repr(logs) + "".join(texts))


async def test_sync_partly_invalid_records_are_dropped_and_counted(fake: FakeUpstream) -> None:
    fake.gitlab["group/other"][0]["sha"] = "g" * 40
    monitor = _monitor(fake)
    async with open_api_client(monitor) as client:
        await monitor.sync_once()
        entry = (await client.get("/api/v1/pipelines/group/other@main")).json()
        metrics = (await client.get("/metrics")).text
    await monitor.stop()
    assert ([p["id"] for p in entry["pipelines"]], entry["stale"]) == ([1001], False)
    assert 'conveyor_monitor_dropped_records_total{provider="gitlab"} 1.0' in metrics


async def test_sync_rate_limit_of_a_host_is_shown_on_every_target_and_in_metrics(
    fake: FakeUpstream,
) -> None:
    fake.faults["group/other"] = Fault.RATE_LIMIT
    monitor = _monitor(fake)
    async with open_api_client(monitor) as client:
        await monitor.sync_once()  # group/other closes the GitLab host's gate
        await monitor.sync_once()  # group/sub/app now waits for it too
        entries = await _entries(client)
        metrics = (await client.get("/metrics")).text
    await monitor.stop()
    errors = {k: e["error"] for k, e in entries.items() if k.startswith("group/")}
    assert all(str(e).startswith("rate limited until ") for e in errors.values()), errors
    host = fake.url.split("//", 1)[1]
    line = next(
        x for x in metrics.splitlines() if x.startswith("conveyor_monitor_rate_limited_until")
    )
    assert line.startswith(
        f'conveyor_monitor_rate_limited_until_timestamp_seconds{{host="{host}",provider="gitlab"}}'
    )
    assert float(line.rsplit(" ", 1)[1]) > 0
