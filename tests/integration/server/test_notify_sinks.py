"""Notifiers against the fake GitHub/GitLab/Slack on loopback: paths, headers, bodies,
retries on 500/429, a hang, and no token in any log line or error."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from conveyor.errors import UpstreamError
from conveyor.model import EventKind, JobRecord, RunRecord, Status
from conveyor.notify.base import Notifications, Notifier, StatusRepo
from conveyor.notify.github import GitHubStatuses
from conveyor.notify.gitlab import GitLabStatuses
from conveyor.notify.poster import Poster
from conveyor.notify.slack import SlackNotifier
from conveyor.outbound.retry import NO_WAIT, RetryPolicy
from conveyor.store import open_store
from conveyor.store.sql import SqlRunStore
from tests.fakes.status_sinks import Answer, Kind, StatusSinks, hang, open_status_sinks

GH_TOKEN = "ghp_faketoken0123456789abcdefghijklmnop"
GL_TOKEN = "glpat-faketoken0123456789abcd"
PUBLIC = "http://ci.example"
SHA = "c0ffee" + "0" * 34
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def make_run(
    status: Status, *, run_id: str = "r1", number: int = 1, repo: str = "acme/app"
) -> RunRecord:
    jobs = (
        JobRecord(name="build", stage="build", status=Status.SUCCESS),
        JobRecord(
            name="test [PY=3.12]",
            stage="test",
            status=Status.FAILED if status is Status.FAILED else Status.SUCCESS,
        ),
    )
    created = T0 + timedelta(minutes=number)
    return RunRecord(
        run_id=run_id,
        repo=repo,
        ref="main",
        sha=SHA,
        event=EventKind.PUSH,
        status=status,
        created_at=created,
        started_at=created,
        finished_at=created + timedelta(seconds=42) if status.is_final else None,
        number=number,
        pipeline_name="ci",
        jobs=jobs if status.is_final else (),
    )


@pytest.fixture
def sinks() -> Iterator[StatusSinks]:
    with open_status_sinks() as running:
        yield running


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlRunStore]:
    opened = open_store(tmp_path / "home")
    yield opened
    opened.close()


def github(sinks: StatusSinks, http: Poster) -> GitHubStatuses:
    repo = StatusRepo(name="acme/app", api_url=sinks.github_api_url, token=GH_TOKEN)
    return GitHubStatuses({"acme/app": repo}, http, public_url=PUBLIC)


def gitlab(sinks: StatusSinks, http: Poster) -> GitLabStatuses:
    repo = StatusRepo(
        name="acme/app", api_url=sinks.gitlab_api_url, token=GL_TOKEN, project="group/sub/app"
    )
    return GitLabStatuses({"acme/app": repo}, http, public_url=PUBLIC)


async def notify(notifications: Notifications, *runs: RunRecord) -> None:
    """started for the first run record, finished for the others, then wait for the calls."""
    await notifications.run_started(runs[0])
    for run in runs[1:]:
        await notifications.run_finished(run)
    await notifications.drain(15)
    await notifications.aclose()


async def test_github_statuses_pending_then_success(sinks: StatusSinks) -> None:
    http = Poster(NO_WAIT, timeout_s=2.0)
    await notify(
        Notifications([github(sinks, http)], http),
        make_run(Status.RUNNING),
        make_run(Status.SUCCESS),
    )
    requests = sinks.requests("github")
    assert [r.path for r in requests] == [f"/repos/acme/app/statuses/{SHA}"] * 2
    assert [r.json()["state"] for r in requests] == ["pending", "success"]
    assert requests[1].json() == {
        "state": "success",
        "target_url": "http://ci.example/api/v1/runs/r1",
        "description": "Run #1 passed in 42s",
        "context": "conveyor/ci",
    }
    assert requests[0].headers["authorization"] == f"Bearer {GH_TOKEN}"


async def test_github_failure_state_names_failed_job(sinks: StatusSinks) -> None:
    http = Poster(NO_WAIT, timeout_s=2.0)
    await notify(
        Notifications([github(sinks, http)], http),
        make_run(Status.RUNNING),
        make_run(Status.FAILED),
    )
    final = sinks.requests("github")[-1].json()
    assert (final["state"], final["description"]) == (
        "failure",
        "Run #1 failed in 42s: test [PY=3.12]",
    )


async def test_gitlab_statuses_running_then_failed_with_encoded_project(sinks: StatusSinks) -> None:
    http = Poster(NO_WAIT, timeout_s=2.0)
    await notify(
        Notifications([gitlab(sinks, http)], http),
        make_run(Status.RUNNING),
        make_run(Status.FAILED),
    )
    requests = sinks.requests("gitlab")
    assert [r.path for r in requests] == [f"/api/v4/projects/group%2Fsub%2Fapp/statuses/{SHA}"] * 2
    assert [(r.json()["state"], r.json()["name"], r.json()["ref"]) for r in requests] == [
        ("running", "conveyor/ci", "main"),
        ("failed", "conveyor/ci", "main"),
    ]
    assert requests[0].headers["private-token"] == GL_TOKEN


async def test_unconfigured_repo_gets_no_status(sinks: StatusSinks) -> None:
    http = Poster(NO_WAIT, timeout_s=2.0)
    other = make_run(Status.RUNNING, repo="someone/else")
    await notify(Notifications([github(sinks, http)], http), other)
    assert sinks.requests() == []


async def test_500s_are_retried_until_the_status_lands(sinks: StatusSinks) -> None:
    sinks.script("github", Answer(500), Answer(502), Answer(503))
    http = Poster(NO_WAIT, timeout_s=2.0)
    await notify(Notifications([github(sinks, http)], http), make_run(Status.RUNNING))
    assert [r.kind for r in sinks.requests()] == ["github"] * 4


async def test_429_retry_after_is_honoured(sinks: StatusSinks) -> None:
    sinks.script("gitlab", Answer(429, headers={"Retry-After": "1"}))
    policy = RetryPolicy(initial_wait_s=0.01, max_wait_s=0.05, jitter_s=0.0)
    http = Poster(policy)
    started = time.monotonic()
    await notify(Notifications([gitlab(sinks, http)], http), make_run(Status.RUNNING))
    assert len(sinks.requests("gitlab")) == 2
    assert time.monotonic() - started >= 0.95


async def test_hanging_upstream_times_out_and_is_logged_with_run_id(sinks: StatusSinks) -> None:
    sinks.script("github", hang(), hang())
    http = Poster(RetryPolicy(max_attempts=2, should_wait=False), timeout_s=0.3)
    with capture_logs() as logs:
        await notify(Notifications([github(sinks, http)], http), make_run(Status.RUNNING))
    failures = [e for e in logs if e["event"] == "notify.failed"]
    assert [(e["run_id"], e["target"], e["kind"]) for e in failures] == [
        ("r1", "github", "timeout")
    ]


async def test_exhausted_retries_log_without_tokens(
    sinks: StatusSinks, store: SqlRunStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # httpx/httpcore would log request URLs at INFO/DEBUG
    sinks.script("github", *[Answer(500)] * 10)
    sinks.script("slack", *[Answer(503)] * 5)
    http = Poster(NO_WAIT, timeout_s=2.0)
    slack = SlackNotifier(sinks.slack_webhook_url, store, http, public_url=PUBLIC)
    with capture_logs() as logs:
        await notify(
            Notifications([github(sinks, http), slack], http),
            make_run(Status.RUNNING),
            make_run(Status.FAILED),
        )
    text = repr(logs) + caplog.text
    assert sorted((e["target"], e["kind"]) for e in logs if e["event"] == "notify.failed") == [
        ("github", "upstream_error"),
        ("github", "upstream_error"),
        ("slack", "upstream_error"),
    ]
    assert GH_TOKEN not in text
    assert "fakeslackwebhooksecret" not in text


async def test_notifications_never_block_the_caller(sinks: StatusSinks) -> None:
    sinks.script("github", hang(5))
    http = Poster(RetryPolicy(max_attempts=1), timeout_s=2)
    notifications = Notifications([github(sinks, http)], http)
    started = time.monotonic()
    await notifications.run_started(make_run(Status.RUNNING))
    assert time.monotonic() - started < 0.1
    await notifications.aclose(timeout_s=0.1)


async def test_slack_failure_then_recovery_from_store_history(
    sinks: StatusSinks, store: SqlRunStore
) -> None:
    failed = store.create_run(
        make_run(Status.FAILED, run_id="20261123T120100000Z-aaaaaaaa", number=1)
    )
    for job in make_run(Status.FAILED).jobs:
        store.save_job(failed.run_id, job)
    fixed = make_run(Status.SUCCESS, run_id="20261123T120200000Z-bbbbbbbb", number=2)
    store.create_run(fixed)
    http = Poster(NO_WAIT, timeout_s=2.0)
    slack = SlackNotifier(sinks.slack_webhook_url, store, http, public_url=PUBLIC)
    notifications = Notifications([slack], http)
    await notifications.run_finished(store.get_run(failed.run_id) or failed)
    # Messages of different runs are sent concurrently; let the first land before the second.
    await notifications.drain(10)
    await notifications.run_finished(fixed)
    await notifications.drain(10)
    await notifications.aclose()
    texts = [r.json()["text"] for r in sinks.requests("slack")]
    assert len(texts) == 2
    assert texts[0].startswith(":x: acme/app@main failed in 42s")
    assert "`test [PY=3.12]`" in texts[0]
    assert texts[1].startswith(":white_check_mark: acme/app@main is back to green")


async def test_slack_success_after_success_says_nothing(
    sinks: StatusSinks, store: SqlRunStore
) -> None:
    store.create_run(make_run(Status.SUCCESS, run_id="20261123T120100000Z-aaaaaaaa", number=1))
    fixed = store.create_run(
        make_run(Status.SUCCESS, run_id="20261123T120200000Z-bbbbbbbb", number=2)
    )
    http = Poster(NO_WAIT, timeout_s=2.0)
    notifications = Notifications(
        [SlackNotifier(sinks.slack_webhook_url, store, http, public_url=PUBLIC)], http
    )
    await notifications.run_finished(fixed)
    await notifications.drain(10)
    await notifications.aclose()
    assert sinks.requests("slack") == []


# ---------------------------------------------------------------- Notifier conformance

NotifierFactory = Callable[[StatusSinks, Poster, SqlRunStore], Notifier]
FACTORIES: dict[str, NotifierFactory] = {
    "github": lambda sinks, http, store: github(sinks, http),
    "gitlab": lambda sinks, http, store: gitlab(sinks, http),
    "slack": lambda sinks, http, store: SlackNotifier(
        sinks.slack_webhook_url, store, http, public_url=PUBLIC
    ),
}


@pytest.mark.parametrize("kind", sorted(FACTORIES))
async def test_notifier_conformance_delivers_a_failed_run(
    kind: Kind, sinks: StatusSinks, store: SqlRunStore
) -> None:
    http = Poster(NO_WAIT, timeout_s=2.0)
    notifier = FACTORIES[kind](sinks, http, store)
    await notifier.run_finished(make_run(Status.FAILED))
    await http.aclose()
    assert notifier.target == kind
    assert [r.kind for r in sinks.requests()] == [kind]


@pytest.mark.parametrize("kind", sorted(FACTORIES))
async def test_notifier_conformance_raises_sanitized_upstream_error(
    kind: Kind, sinks: StatusSinks, store: SqlRunStore
) -> None:
    sinks.script(kind, *[Answer(500)] * 5)
    http = Poster(NO_WAIT, timeout_s=2.0)
    notifier = FACTORIES[kind](sinks, http, store)
    with pytest.raises(UpstreamError) as caught:
        await notifier.run_finished(make_run(Status.FAILED))
    await http.aclose()
    message = str(caught.value)
    assert message == f"{kind}: upstream 500 after 5 attempts"
