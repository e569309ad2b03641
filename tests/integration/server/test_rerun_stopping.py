"""Playing or retrying a job while its run is stopping is a conflict with the run's state:
409 with the route's code (`job_not_manual`, `job_not_retryable`), never 400 `bad_request`.
A real server on loopback with real runs: `broken` fails and `fail_fast` stops the run, while
`stubborn` ignores SIGTERM and holds the stop open until the test's release file exists (the
engine's grace is 5 s); the manual job `deploy` waits to be played all along. The jobs wait
for files in tmp_path, so they run unsandboxed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.git_repos import GitRepo
from tests.integration.server.conftest import API_TOKEN, Served, make_settings, serve_app

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
DEADLINE_S = 20.0
STOPPING = """\
name: stopping
fail_fast: true
jobs:
  deploy:
    manual: true
    run: echo deployed
  stubborn:
    run: |
      trap '' TERM; touch "$TRAPPED"
      for i in $(seq 600); do [ -e "$RELEASE" ] && exit 0; sleep 0.05; done; exit 1
  broken:
    run: |
      for i in $(seq 600); do [ -e "$TRAPPED" ] && exit 1; sleep 0.05; done; exit 1
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Served]:
    remote = GitRepo.create(tmp_path / "remote", {".conveyor.yml": STOPPING})
    with serve_app(make_settings(remote, sandbox="none"), home=tmp_path / "home") as served:
        yield served


def jobs_of(run: dict[str, object]) -> dict[str, str]:
    jobs = run["jobs"]
    assert isinstance(jobs, list)
    return {job["name"]: job["status"] for job in jobs}


def stopping_run(server: Served, tmp_path: Path) -> str:
    """A run whose `broken` failed (so `fail_fast` stopped it) while `stubborn` still runs
    through its grace, `deploy` waiting to be played."""
    variables = {"TRAPPED": str(tmp_path / "trapped"), "RELEASE": str(tmp_path / "release")}
    answer = httpx.post(
        server.url("/api/v1/runs"),
        json={"repo": "acme/app", "ref": "main", "variables": variables},
        headers=AUTH,
    )
    assert answer.status_code == 202, answer.text
    run_id: str = answer.json()["run_id"]
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        run = httpx.get(server.url(f"/api/v1/runs/{run_id}"), headers=AUTH).json()
        if jobs_of(run) == {"deploy": "manual", "stubborn": "running", "broken": "failed"}:
            return run_id
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} never got to stopping: {run}")


def rerun(server: Served, run_id: str, job: str, verb: str) -> httpx.Response:
    return httpx.post(server.url(f"/api/v1/runs/{run_id}/jobs/{job}/{verb}"), headers=AUTH)


def test_play_while_the_run_is_stopping_is_409_job_not_manual(
    server: Served, tmp_path: Path
) -> None:
    run_id = stopping_run(server, tmp_path)
    answer = rerun(server, run_id, "deploy", "play")
    (tmp_path / "release").touch()
    server.wait_for_run(run_id)
    error = answer.json()["error"]
    assert (answer.status_code, error["code"]) == (409, "job_not_manual")
    assert error["message"] == (
        f"run {run_id}: the run is stopping (fail_fast: job broken failed); job 'deploy' "
        "cannot be played now (play it once the run has ended)"
    )
    assert error["request_id"]


def test_play_once_the_stopped_run_has_ended_runs_the_job(server: Served, tmp_path: Path) -> None:
    run_id = stopping_run(server, tmp_path)
    (tmp_path / "release").touch()
    server.wait_for_run(run_id)
    assert rerun(server, run_id, "deploy", "play").status_code == 202
    final = server.wait_for_run(run_id)
    assert {job.name: job.status.value for job in final.jobs}["deploy"] == "success"


def test_retry_while_the_run_is_stopping_is_409_job_not_retryable(
    server: Served, tmp_path: Path
) -> None:
    run_id = stopping_run(server, tmp_path)
    answer = rerun(server, run_id, "broken", "retry")
    (tmp_path / "release").touch()
    server.wait_for_run(run_id)
    error = answer.json()["error"]
    assert (answer.status_code, error["code"]) == (409, "job_not_retryable")
    assert error["message"] == (
        f"run {run_id}: the run is stopping (fail_fast: job broken failed); retry the job "
        "once it has ended"
    )
