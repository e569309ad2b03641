"""Upstream webhooks refresh the monitor at once, over real HTTP: the fake upstreams send
GitLab `Pipeline Hook`, GitHub `workflow_run` and Jenkins notification deliveries to a real
conveyor server (uvicorn on loopback, `interval = 30`), and the served entry holds the
upstream's new pipeline within 1 s. Forged or unknown-target deliveries change nothing; a
burst for one target costs one or two fetches."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest
from tests.fakes.upstreams import FakeUpstream
from tests.fakes.upstreams.apis import github_run, gitlab_pipeline, jenkins_build
from tests.fakes.upstreams.hooks import (
    Delivery,
    github_workflow_run,
    gitlab_pipeline_hook,
    jenkins_notification,
)
from tests.fakes.upstreams.scenario import ENV, targets_for
from tests.integration.server.conftest import Served, serve_app

from conveyor.settings import parse_settings

HOOK_SECRET = "monitor-hook-secret-0123456789abcdef"
WRONG = "not-the-monitor-hook-secret-0123456789"
# key, the fake's data key, its request path fragment
TARGETS = {
    "gitlab": ("group/sub/app@main", "/projects/group%2Fsub%2Fapp/pipelines"),
    "github": ("octo/api@main", "/repos/octo/api/actions/runs"),
    "jenkins": ("folder/app@main", "/job/folder/job/app/job/main/api/json"),
}


def _delivery(provider: str, secret: str, repo: str | None = None) -> Delivery:
    if provider == "gitlab":
        return gitlab_pipeline_hook(repo or "group/sub/app", "main", secret)
    if provider == "github":
        return github_workflow_run(repo or "octo/api", "main", secret)
    return jenkins_notification(repo or "job/folder/job/app/job/main/", secret)


def _add_pipeline(fake: FakeUpstream, provider: str) -> int:
    """A new newest pipeline upstream; its id as the monitor will serve it."""
    if provider == "gitlab":
        fake.gitlab["group/sub/app"].insert(0, gitlab_pipeline(9))
        return 1009
    if provider == "github":
        fake.github["octo/api"].insert(0, github_run(9))
        return 5009
    fake.jenkins["folder/app/main"].insert(0, jenkins_build(9))
    return 9


def _settings_text(url: str, *, hooks: bool = True) -> str:
    text = "[server]\npublic_read = true\n\n[monitor]\ninterval = 30\njitter = 0\ntimeout = 2\n"
    if hooks:
        # A 2 s gap: on a loaded machine the burst below takes longer than the default 0.5 s
        # to deliver, and a stream longer than the gap rightly costs one fetch per gap.
        text += 'hook_secret_env = "MONITOR_HOOK_SECRET"\nhook_min_gap = 2\n'
    for target in targets_for(url):
        text += "\n[[monitor.targets]]\n"
        text += "".join(f"{k} = {orjson.dumps(v).decode()}\n" for k, v in target.items())
    return text


@pytest.fixture
async def served(fake: FakeUpstream, tmp_path: Path) -> AsyncIterator[Served]:
    env = {**ENV, "MONITOR_HOOK_SECRET": HOOK_SECRET}
    settings = parse_settings(_settings_text(fake.url), env)
    with serve_app(settings, home=tmp_path / "home", env=env) as server:
        yield server


async def _entry(client: httpx.AsyncClient, key: str) -> dict[str, object]:
    response = await client.get(f"/api/v1/pipelines/{key}")
    assert response.status_code == 200
    data: dict[str, object] = response.json()
    return data


async def _wait_fetched(client: httpx.AsyncClient, key: str) -> None:
    deadline = time.monotonic() + 10
    while (await _entry(client, key))["fetched_at"] is None:
        assert time.monotonic() < deadline, f"{key} was never fetched"
        await asyncio.sleep(0.02)


@pytest.fixture
async def client(served: Served) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=served.base_url, timeout=10) as http:
        for key, _ in TARGETS.values():
            await _wait_fetched(http, key)
        yield http


@pytest.mark.parametrize("provider", sorted(TARGETS))
async def test_monitor_hook_event_serves_the_refetched_entry_within_1s(
    fake: FakeUpstream, client: httpx.AsyncClient, provider: str
) -> None:
    key, _ = TARGETS[provider]
    new_id = _add_pipeline(fake, provider)
    headers, body = _delivery(provider, HOOK_SECRET)
    sent = time.monotonic()
    response = await client.post(f"/webhooks/monitor/{provider}", headers=headers, content=body)
    assert (202, [{"key": key, "refresh": "started"}]) == (
        response.status_code,
        response.json()["targets"],
    )
    while (await _entry(client, key))["pipelines"][0]["id"] != new_id:  # type: ignore[index]
        assert time.monotonic() - sent < 1.0, "the entry was not fresh within 1 s"
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("provider", sorted(TARGETS))
async def test_monitor_hook_bad_signature_is_401_and_fetches_nothing(
    fake: FakeUpstream, client: httpx.AsyncClient, provider: str
) -> None:
    _, fragment = TARGETS[provider]
    before = len(fake.requests_to(fragment))
    headers, body = _delivery(provider, WRONG)
    response = await client.post(f"/webhooks/monitor/{provider}", headers=headers, content=body)
    await asyncio.sleep(0.3)
    assert (response.status_code, response.json()["error"]["code"]) == (401, "bad_signature")
    assert before == len(fake.requests_to(fragment))


@pytest.mark.parametrize(
    ("provider", "repo"),
    [("gitlab", "group/nobody"), ("github", "octo/nobody"), ("jenkins", "job/nobody/job/main/")],
)
async def test_monitor_hook_unknown_target_is_404_and_fetches_nothing(
    fake: FakeUpstream, client: httpx.AsyncClient, provider: str, repo: str
) -> None:
    count = len(fake.requests)
    headers, body = _delivery(provider, HOOK_SECRET, repo)
    response = await client.post(f"/webhooks/monitor/{provider}", headers=headers, content=body)
    await asyncio.sleep(0.3)
    error = response.json()["error"]
    assert (response.status_code, error["code"]) == (404, "unknown_target")
    assert "[[monitor.targets]]" in error["message"] and HOOK_SECRET not in response.text
    assert count == len(fake.requests)


async def test_monitor_hook_burst_of_100_costs_one_or_two_fetches(
    fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    key, fragment = TARGETS["gitlab"]
    before = len(fake.requests_to(fragment))
    new_id = _add_pipeline(fake, "gitlab")
    headers, body = _delivery("gitlab", HOOK_SECRET)
    answers = await asyncio.gather(
        *(
            client.post("/webhooks/monitor/gitlab", headers=headers, content=body)
            for _ in range(100)
        )
    )
    await asyncio.sleep(2.5)  # past the follow-up fetch (hook_min_gap = 2 s)
    assert {202} == {a.status_code for a in answers}
    assert 1 <= len(fake.requests_to(fragment)) - before <= 2
    assert new_id == (await _entry(client, key))["pipelines"][0]["id"]  # type: ignore[index]


async def test_monitor_hooks_are_404_when_not_configured(
    fake: FakeUpstream, tmp_path: Path
) -> None:
    settings = parse_settings(_settings_text(fake.url, hooks=False), ENV)
    with serve_app(settings, home=tmp_path / "home", env=ENV) as server:
        headers, body = _delivery("gitlab", HOOK_SECRET)
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            response = await http.post("/webhooks/monitor/gitlab", headers=headers, content=body)
    assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")
    assert "hook_secret_env" in response.json()["error"]["message"]
