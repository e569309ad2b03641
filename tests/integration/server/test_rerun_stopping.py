"""Playing or retrying a job while its run is stopping is a conflict with the run's state:
409, never 400 `bad_request`. Stopped by `fail_fast`: the route's code (`job_not_manual`,
`job_not_retryable`), and the job can be asked for once the run has ended; stopped by a
cancel (the API's, or one requested through the store as `conveyor cancel` does from another
process): 409 `run_canceled`, as once the run is `canceled`.

A real server on loopback with real runs: `broken` fails once `stubborn` is in its loop
(after `$(seq)`, whose subshell a SIGTERM would kill); `stubborn` answers SIGTERM by
touching a file (so the test knows the stop began) and goes on until the test's release
file exists, holding the stop open (the engine's grace is 5 s); the manual job `deploy`
waits to be played all along. The jobs wait for files in tmp_path, so they run
unsandboxed."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
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
      trap 'touch "$TERMED"' TERM
      for i in $(seq 600); do
        [ -e "$TRAPPED" ] || touch "$TRAPPED" || :
        [ -e "$RELEASE" ] && exit 0
        sleep 0.05 || :
      done
      exit 1
  broken:
    run: |
      for i in $(seq 600); do [ -e "$TRAPPED" ] && exit 1; sleep 0.05; done; exit 1
"""
# No fail_fast: the run goes on after `broken` failed, until the test cancels it.
CANCELING = STOPPING.replace("fail_fast: true\n", "")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Served]:
    remote = GitRepo.create(tmp_path / "remote", {".conveyor.yml": STOPPING})
    with serve_app(make_settings(remote, sandbox="none"), home=tmp_path / "home") as served:
        yield served


def jobs_of(run: dict[str, object]) -> dict[str, str]:
    jobs = run["jobs"]
    assert isinstance(jobs, list)
    return {job["name"]: job["status"] for job in jobs}


def started_run(server: Served, tmp_path: Path) -> str:
    """A run whose `broken` failed while `stubborn` runs and `deploy` waits to be played
    (with STOPPING, `fail_fast` has stopped it)."""
    files = {name.upper(): str(tmp_path / name) for name in ("trapped", "termed", "release")}
    answer = httpx.post(
        server.url("/api/v1/runs"),
        json={"repo": "acme/app", "ref": "main", "variables": files},
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
    raise AssertionError(f"run {run_id} never got there: {run}")


def wait_for_stop(tmp_path: Path) -> None:
    """Until `stubborn` got its SIGTERM: the engine is stopping the run."""
    deadline = time.monotonic() + DEADLINE_S
    while not (tmp_path / "termed").exists():
        assert time.monotonic() < deadline, "the run was never stopped"
        time.sleep(0.02)


def rerun(server: Served, run_id: str, job: str, verb: str) -> httpx.Response:
    return httpx.post(server.url(f"/api/v1/runs/{run_id}/jobs/{job}/{verb}"), headers=AUTH)


@pytest.mark.parametrize(
    ("job", "verb", "code", "refusal"),
    [
        ("deploy", "play", "job_not_manual", "cannot be played now (play it"),
        ("broken", "retry", "job_not_retryable", "cannot be retried now (retry it"),
    ],
    ids=["play", "retry"],
)
def test_play_or_retry_while_the_run_is_stopping_is_409(
    server: Served, tmp_path: Path, job: str, verb: str, code: str, refusal: str
) -> None:
    run_id = started_run(server, tmp_path)
    wait_for_stop(tmp_path)
    answer = rerun(server, run_id, job, verb)
    (tmp_path / "release").touch()
    server.wait_for_run(run_id)
    error = answer.json()["error"]
    assert (answer.status_code, error["code"]) == (409, code)
    assert error["message"] == (
        f"run {run_id}: the run is stopping (fail_fast: job broken failed); job '{job}' "
        f"{refusal} once the run has ended)"
    )
    assert error["request_id"]


def test_play_once_the_stopped_run_has_ended_runs_the_job(server: Served, tmp_path: Path) -> None:
    run_id = started_run(server, tmp_path)
    (tmp_path / "release").touch()
    server.wait_for_run(run_id)
    assert rerun(server, run_id, "deploy", "play").status_code == 202
    final = server.wait_for_run(run_id)
    assert {job.name: job.status.value for job in final.jobs}["deploy"] == "success"


def _cancel_by_api(server: Served, run_id: str) -> None:
    assert httpx.post(server.url(f"/api/v1/runs/{run_id}/cancel"), headers=AUTH).is_success


def _cancel_in_the_store(server: Served, run_id: str) -> None:
    assert server.store.request_cancel(run_id)  # as `conveyor cancel` from another process


@pytest.mark.parametrize("cancel", [_cancel_by_api, _cancel_in_the_store], ids=["api", "store"])
def test_play_or_retry_while_a_cancel_stops_the_run_is_409_run_canceled(
    server: Served, tmp_path: Path, cancel: Callable[[Served, str], None]
) -> None:
    GitRepo(tmp_path / "remote").commit({".conveyor.yml": CANCELING})
    run_id = started_run(server, tmp_path)
    cancel(server, run_id)
    wait_for_stop(tmp_path)
    play = rerun(server, run_id, "deploy", "play")
    retry = rerun(server, run_id, "broken", "retry")
    (tmp_path / "release").touch()
    assert server.wait_for_run(run_id).status.value == "canceled"
    assert (play.status_code, play.json()["error"]["code"]) == (409, "run_canceled")
    assert (retry.status_code, retry.json()["error"]["code"]) == (409, "run_canceled")
    assert play.json()["error"]["message"] == (
        f"run {run_id}: the run was canceled, its manual jobs can no longer be played "
        "(trigger a new run)"
    )
    assert retry.json()["error"]["message"] == (
        f"run {run_id}: the run was canceled, its jobs can no longer be retried (retry the "
        "whole run instead)"
    )
