"""The stored run record of a server run, read back through the runs API."""

from __future__ import annotations

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
