"""The stored run record of a server run, read back through the runs API."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from conveyor.model import Status
from tests.fakes.git_repos import GitRepo
from tests.integration.server.conftest import (
    API_TOKEN,
    github_headers,
    github_push_body,
    make_settings,
    serve_app,
)

AUTH = {"authorization": f"Bearer {API_TOKEN}"}


def test_webhook_run_record_stores_the_pipeline_name(tmp_path: Path, remote: GitRepo) -> None:
    with serve_app(make_settings(remote), home=tmp_path / "home") as server:
        body = github_push_body(remote.head())
        response = httpx.post(
            server.url("/webhooks/github"), content=body, headers=github_headers(body)
        )
        run_id = response.json()["run_id"]
        stored = server.wait_for_run(run_id)
        shown = httpx.get(server.url(f"/api/v1/runs/{run_id}"), headers=AUTH)
    assert (stored.status, stored.pipeline_name) == (Status.SUCCESS, "demo")
    assert shown.status_code == 200
    assert shown.json()["pipeline"] == "demo"


def test_finished_run_is_served_again_and_still_needs_the_token(
    tmp_path: Path, remote: GitRepo
) -> None:
    with serve_app(make_settings(remote), home=tmp_path / "home") as server:
        body = github_push_body(remote.head())
        response = httpx.post(
            server.url("/webhooks/github"), content=body, headers=github_headers(body)
        )
        run_id = response.json()["run_id"]
        stored = server.wait_for_run(run_id)
        assert stored.finished_at is not None
        # Past the settling margin, the record's bytes are kept: the answers must not change.
        time.sleep(max(0.0, 2.1 - (datetime.now(UTC) - stored.finished_at).total_seconds()))
        url = server.url(f"/api/v1/runs/{run_id}")
        first, second = (httpx.get(url, headers=AUTH) for _ in range(2))
        anonymous = httpx.get(url)
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.content == second.content
    assert first.headers["content-type"] == "application/json"
    assert (first.json()["status"], first.json()["pipeline"]) == ("success", "demo")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] != ""
