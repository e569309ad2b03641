"""The reads answered in front of the routing (`ConveyorApp`, `answer_fast`: the monitor's
and `GET /api/v1/runs/{id}`) keep the contracts of every other route: the token check when
reads are not public, the one error envelope with the request id, X-Request-ID echoed, one
access event per request."""

from __future__ import annotations

import time
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from structlog.testing import capture_logs

from conveyor.records import run_to_dict
from tests.fakes.git_repos import GitRepo
from tests.integration.server.conftest import (
    API_TOKEN,
    Served,
    github_headers,
    github_push_body,
    make_settings,
    serve_app,
)

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
    for header in (f"Basic {API_TOKEN}", f"Bearer {API_TOKEN}x", "Bearer  x", f"{API_TOKEN}"):
        refused = httpx.get(server.url("/api/v1/pipelines"), headers={"authorization": header})
        assert (refused.status_code, refused.json()["error"]["code"]) == (401, "unauthorized")
    for header in (f"bearer {API_TOKEN}", f"BEARER  {API_TOKEN}"):  # as require_read reads it
        allowed = httpx.get(server.url("/api/v1/pipelines"), headers={"authorization": header})
        assert allowed.status_code == 200


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


def test_run_reads_answer_the_records_bytes_the_token_and_the_envelope(
    server: Served, remote: GitRepo
) -> None:
    body = github_push_body(remote.head())
    posted = httpx.post(server.url("/webhooks/github"), content=body, headers=github_headers(body))
    run_id = posted.json()["run_id"]
    stored = server.wait_for_run(run_id)
    with capture_logs() as logs:
        shown = httpx.get(
            server.url(f"/api/v1/runs/{run_id}"), headers={**AUTH, "x-request-id": "run-1"}
        )
        anonymous = httpx.get(server.url(f"/api/v1/runs/{run_id}"))
        unknown = httpx.get(server.url("/api/v1/runs/20990101T000000000Z-nope0000"), headers=AUTH)
        events = _access_events(logs, 3)
    assert (shown.status_code, shown.headers["x-request-id"]) == (200, "run-1")
    assert shown.content == orjson.dumps(run_to_dict(stored))
    assert shown.headers["content-type"] == "application/json"
    assert (anonymous.status_code, anonymous.json()["error"]["code"]) == (401, "unauthorized")
    error = unknown.json()["error"]
    assert (unknown.status_code, error["code"]) == (404, "run_not_found")
    assert error["request_id"] == unknown.headers["x-request-id"]
    assert [(e["path"], e["status"]) for e in events] == [
        (f"/api/v1/runs/{run_id}", 200),
        (f"/api/v1/runs/{run_id}", 401),
        ("/api/v1/runs/20990101T000000000Z-nope0000", 404),
    ]
    # Deeper paths under a run still take the routes.
    log = httpx.get(server.url(f"/api/v1/runs/{run_id}/jobs/build/log"), headers=AUTH)
    assert (log.status_code, log.headers["content-type"]) == (200, "application/x-ndjson")
