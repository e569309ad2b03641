"""`POST /api/v1/runs/{id}/jobs/{job}/retry` on a real server with real runs: a failed job
runs again as its next attempt inside the same run, then the jobs its failure skipped, and
the run's status is computed again over all jobs — after the run ended (it is resumed) and
while it still executes (the retry joins the execution). Refusals: a job that did not fail,
a job retried twice, a canceled run, unknown run or job, no token. The job fails on its
first try only: it leaves a marker file (in tmp_path, so the jobs run unsandboxed)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from conveyor.model import RunRecord, Status
from tests.fakes.git_repos import GitRepo
from tests.integration.server.conftest import API_TOKEN, Served, make_settings, serve_app

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
FLAKY = """\
name: flaky
jobs:
  build:
    run: echo built
  unit:
    needs: [build]
    run: |
      if [ -e "$MARKER" ]; then echo "second try"; exit 0; fi
      touch "$MARKER"; echo "first try"; exit 1
  package:
    needs: [unit]
    run: echo packaged
  slow:
    run: |
      if [ -z "$RELEASE" ]; then exit 0; fi
      for i in $(seq 600); do [ -e "$RELEASE" ] && exit 0; sleep 0.05; done; exit 1
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Served]:
    remote = GitRepo.create(tmp_path / "remote", {".conveyor.yml": FLAKY})
    with serve_app(make_settings(remote, sandbox="none"), home=tmp_path / "home") as served:
        yield served


def trigger(server: Served, **variables: str) -> str:
    answer = httpx.post(
        server.url("/api/v1/runs"),
        json={"repo": "acme/app", "ref": "main", "variables": variables},
        headers=AUTH,
    )
    assert answer.status_code == 202, answer.text
    run_id: str = answer.json()["run_id"]
    return run_id


def retry(server: Served, run_id: str, job: str) -> httpx.Response:
    return httpx.post(server.url(f"/api/v1/runs/{run_id}/jobs/{job}/retry"), headers=AUTH)


def jobs_of(run: RunRecord) -> dict[str, tuple[str, int]]:
    return {job.name: (str(job.status), job.attempt) for job in run.jobs}


def wait_until(server: Served, run_id: str, job: str, status: Status) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        run = server.store.get_run(run_id)
        if run is not None and any(j.name == job and j.status is status for j in run.jobs):
            return
        time.sleep(0.05)
    raise AssertionError(f"job {job} of run {run_id} never became {status}")


@pytest.fixture
def failed(server: Served, tmp_path: Path) -> str:
    run = server.wait_for_run(trigger(server, MARKER=str(tmp_path / "marker")))
    assert (run.status, jobs_of(run)) == (
        Status.FAILED,
        {
            "build": ("success", 1),
            "unit": ("failed", 1),
            "package": ("skipped", 0),
            "slow": ("success", 1),
        },
    )
    return run.run_id


def test_retry_job_answers_202_with_the_same_run_pending_again(server: Served, failed: str) -> None:
    answer = retry(server, failed, "unit")
    body = answer.json()
    assert (answer.status_code, answer.headers["location"], body["run_id"]) == (
        202,
        f"/api/v1/runs/{failed}",
        failed,
    )
    unit = next(job for job in body["jobs"] if job["name"] == "unit")
    assert (unit["status"], unit["attempt"], unit["exit_code"]) == ("pending", 2, None)
    server.wait_for_run(failed)


def test_retry_job_runs_its_next_attempt_then_the_skipped_jobs_and_the_run_turns_green(
    server: Served, failed: str
) -> None:
    assert retry(server, failed, "unit").status_code == 202
    final = server.wait_for_run(failed)
    assert (final.status, jobs_of(final)) == (
        Status.SUCCESS,
        {
            "build": ("success", 1),
            "unit": ("success", 2),
            "package": ("success", 1),
            "slow": ("success", 1),
        },
    )
    attempts = server.store.job_attempts(failed, "unit")
    history = [(str(j.status), j.attempt) for j in attempts if j.attempt]  # 0: before it ran
    assert history == [("failed", 1), ("success", 2)]


def test_retry_job_appends_the_new_attempt_to_the_job_log(server: Served, failed: str) -> None:
    assert retry(server, failed, "unit").status_code == 202
    server.wait_for_run(failed)
    log = httpx.get(server.url(f"/api/v1/runs/{failed}/jobs/unit/log"), headers=AUTH)
    lines = [orjson.loads(line) for line in log.content.splitlines()]
    texts = [line["text"] for line in lines]
    assert texts.index("first try") < texts.index("second try")
    assert [line["n"] for line in lines] == list(range(1, len(lines) + 1))


def test_retry_job_joins_a_run_that_still_executes(server: Served, tmp_path: Path) -> None:
    release = tmp_path / "release"
    run_id = trigger(server, MARKER=str(tmp_path / "marker"), RELEASE=str(release))
    wait_until(server, run_id, "package", Status.SKIPPED)  # unit failed; slow still runs
    assert retry(server, run_id, "unit").status_code == 202
    wait_until(server, run_id, "package", Status.SUCCESS)
    release.touch()
    final = server.wait_for_run(run_id)
    assert (final.status, jobs_of(final)["unit"]) == (Status.SUCCESS, ("success", 2))


def test_retry_job_refuses_a_job_that_did_not_fail(server: Served, failed: str) -> None:
    answer = retry(server, failed, "build")
    error = answer.json()["error"]
    assert (answer.status_code, error["code"]) == (409, "job_not_retryable")
    assert "'build'" in error["message"] and "success" in error["message"]


def test_retry_job_twice_is_409_the_second_time(server: Served, failed: str) -> None:
    assert retry(server, failed, "unit").status_code == 202
    again = retry(server, failed, "unit")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "job_not_retryable")
    server.wait_for_run(failed)


def test_retry_job_of_a_canceled_run_is_409(server: Served, tmp_path: Path) -> None:
    run_id = trigger(server, MARKER=str(tmp_path / "marker"), RELEASE=str(tmp_path / "never"))
    wait_until(server, run_id, "unit", Status.FAILED)
    httpx.post(server.url(f"/api/v1/runs/{run_id}/cancel"), headers=AUTH)
    assert server.wait_for_run(run_id).status is Status.CANCELED
    answer = retry(server, run_id, "unit")
    assert (answer.status_code, answer.json()["error"]["code"]) == (409, "run_canceled")
    # One wording for the refusal, the route's and the engine's (engine.resume).
    assert answer.json()["error"]["message"] == (
        f"run {run_id}: the run was canceled, its jobs can no longer be retried (retry the "
        "whole run instead)"
    )


def test_retry_job_of_an_unknown_job_or_run_is_404(server: Served, failed: str) -> None:
    job = retry(server, failed, "unti")
    run = retry(server, "20261123T120000000Z-abcdefgh", "unit")
    assert (job.status_code, job.json()["error"]["code"]) == (404, "job_not_found")
    assert "did you mean 'unit'" in job.json()["error"]["message"]
    assert (run.status_code, run.json()["error"]["code"]) == (404, "run_not_found")


def test_retry_job_needs_the_token(server: Served, failed: str) -> None:
    answer = httpx.post(server.url(f"/api/v1/runs/{failed}/jobs/unit/retry"))
    assert (answer.status_code, answer.json()["error"]["code"]) == (401, "unauthorized")
