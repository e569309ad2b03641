"""The monitor reads answered in front of the routing (`ConveyorApp`, `answer_fast`) keep
the contracts of every other route: the token check when reads are not public, the one
error envelope with the request id, X-Request-ID echoed, one access event per request."""

from __future__ import annotations

import time
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from tests.fakes.git_repos import GitRepo
from tests.integration.server.conftest import API_TOKEN, Served, make_settings, serve_app

AUTH = {"authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture
def server(tmp_path: Path, remote: GitRepo) -> Iterator[Served]:
    with serve_app(make_settings(remote, public_read=False), home=tmp_path / "home") as served:
        yield served


def _access_events(logs: list[MutableMapping[str, Any]], count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 5  # the access event is logged just after the answer
    while time.monotonic() < deadline:
        found = [dict(e) for e in logs if e["event"] == "http.request"]
        if len(found) >= count:
            return found
        time.sleep(0.01)
    return [dict(e) for e in logs if e["event"] == "http.request"]


def test_reads_need_the_token_when_reads_are_not_public(server: Served) -> None:
    response = httpx.get(server.url("/api/v1/pipelines"), headers={"x-request-id": "fast-1"})
    assert response.status_code == 401
    assert response.headers["x-request-id"] == "fast-1"
    assert response.json()["error"]["code"] == "unauthorized"
    assert response.json()["error"]["request_id"] == "fast-1"
    wrong = httpx.get(server.url("/api/v1/pipelines/a@main"), headers={"authorization": "x"})
    assert wrong.status_code == 401


def test_reads_answer_the_cache_and_the_envelope(server: Served) -> None:
    listed = httpx.get(server.url("/api/v1/pipelines"), headers=AUTH)
    assert (listed.status_code, listed.json()) == (200, [])
    assert listed.headers["content-type"] == "application/json"
    assert len(listed.headers["x-request-id"]) == 32
    unknown = httpx.get(server.url("/api/v1/pipelines/group/app@main"), headers=AUTH)
    assert unknown.status_code == 404
    error = unknown.json()["error"]
    assert (error["code"], error["request_id"]) == ("not_found", unknown.headers["x-request-id"])
    assert "group/app@main" in error["message"]
    bad = httpx.get(server.url("/api/v1/pipelines?provider=svn"), headers=AUTH)
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "bad_request")


def test_reads_log_one_access_event_each(server: Served) -> None:
    with capture_logs() as logs:
        httpx.get(server.url("/api/v1/pipelines"), headers={**AUTH, "x-request-id": "acc-7"})
        httpx.get(server.url("/api/v1/pipelines/x@main"), headers={"x-request-id": "acc-8"})
        events = _access_events(logs, 2)
    assert [(e["request_id"], e["method"], e["path"], e["status"]) for e in events] == [
        ("acc-7", "GET", "/api/v1/pipelines", 200),
        ("acc-8", "GET", "/api/v1/pipelines/x@main", 401),
    ]
    assert all(e["duration_ms"] >= 0 for e in events)


def test_other_methods_still_go_through_the_routes(server: Served) -> None:
    retry = httpx.post(server.url("/api/v1/pipelines/x@main/retry"))
    assert (retry.status_code, retry.json()["error"]["code"]) == (401, "unauthorized")
    head = httpx.head(server.url("/api/v1/pipelines"), headers=AUTH)
    assert head.status_code == 200
