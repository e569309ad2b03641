"""`GET /api/v1/schedules` and `POST /api/v1/schedules/{id}/run` on a real server."""

from __future__ import annotations

from pathlib import Path

import httpx

from conveyor.model import EventKind, Status
from conveyor.settings import Settings, parse_settings
from tests.fakes.git_repos import GitRepo
from tests.integration.server.conftest import API_TOKEN, ENV, serve_app, settings_text

SCHEDULES = """
[[schedules]]
id = "nightly"
repo = "acme/app"
ref = "main"
cron = "0 3 * * *"
timezone = "Europe/Paris"
description = "nightly build"
variables = {NIGHTLY = "1"}
"""
AUTH = {"authorization": f"Bearer {API_TOKEN}"}


def _settings(remote: GitRepo) -> Settings:
    # `none`: a job writes what it saw to tmp_path, which a sandbox's private /tmp hides.
    text = settings_text(remote.clone_url, remote.clone_url, sandbox="none") + SCHEDULES
    return parse_settings(text, ENV)


def test_schedules_are_listed_with_their_next_run(tmp_path: Path, remote: GitRepo) -> None:
    with serve_app(_settings(remote), home=tmp_path / "home") as server:
        anonymous = httpx.get(server.url("/api/v1/schedules"))
        listed = httpx.get(server.url("/api/v1/schedules"), headers=AUTH)
    assert anonymous.status_code == 401
    assert listed.status_code == 200
    [item] = listed.json()["schedules"]
    assert {k: v for k, v in item.items() if k not in ("next_run_at", "last_run_at")} == {
        "id": "nightly",
        "repo": "acme/app",
        "ref": "main",
        "cron": "0 3 * * *",
        "timezone": "Europe/Paris",
        "description": "nightly build",
        "variables": {"NIGHTLY": "1"},
    }
    assert item["next_run_at"].endswith(("T02:00:00.000Z", "T01:00:00.000Z"))
    assert (tmp_path / "home" / "schedules.json").exists()


def test_schedule_run_by_hand_is_a_schedule_run(tmp_path: Path, remote: GitRepo) -> None:
    out = tmp_path / "seen"
    pipeline = (
        "name: nightly\non: [schedule]\njobs:\n  build:\n"
        f'    run: echo "$CONVEYOR_EVENT $NIGHTLY" > {out}\n'
    )
    remote.commit({".conveyor.yml": pipeline})
    with serve_app(_settings(remote), home=tmp_path / "home") as server:
        anonymous = httpx.post(server.url("/api/v1/schedules/nightly/run"))
        unknown = httpx.post(server.url("/api/v1/schedules/weekly/run"), headers=AUTH)
        response = httpx.post(server.url("/api/v1/schedules/nightly/run"), headers=AUTH)
        assert response.status_code == 202
        run = server.wait_for_run(response.json()["run_id"])
    assert anonymous.status_code == 401
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "unknown_schedule")
    assert (run.status, run.event, run.ref) == (Status.SUCCESS, EventKind.SCHEDULE, "main")
    assert out.read_text() == "schedule 1\n"
