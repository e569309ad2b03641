"""`POST /api/v1/runs/{id}/retry` on a real server with real runs: a new run of the same
trigger (repo, ref, sha, event, variables), refused while the run has not ended, the
usual envelope for an unknown run and a missing token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.git_repos import GitRepo
from tests.integration.server.conftest import API_TOKEN, Served, make_settings, serve_app

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
FAILING = """\
name: flaky
jobs:
  check:
    run: |
      echo "FLAVOUR=$FLAVOUR"
      if [ "$SLOW" = 1 ]; then sleep 30; fi
      exit 1
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Served]:
    remote = GitRepo.create(tmp_path / "remote", {".conveyor.yml": FAILING})
    with serve_app(make_settings(remote), home=tmp_path / "home") as served:
        yield served


def trigger(server: Served, **variables: str) -> str:
    answer = httpx.post(
        server.url("/api/v1/runs"),
        json={"repo": "acme/app", "ref": "main", "variables": variables, "event": "push"},
        headers=AUTH,
    )
    assert answer.status_code == 202, answer.text
    run_id: str = answer.json()["run_id"]
    return run_id


def test_retry_run_queues_a_new_run_of_the_same_trigger(server: Served) -> None:
    first = server.wait_for_run(trigger(server, FLAVOUR="mint"))
    answer = httpx.post(server.url(f"/api/v1/runs/{first.run_id}/retry"), headers=AUTH)
    assert answer.status_code == 202, answer.text
    again = answer.json()
    assert answer.headers["location"] == f"/api/v1/runs/{again['run_id']}"
    assert again["run_id"] != first.run_id
    retried = server.wait_for_run(again["run_id"])
    assert (retried.repo, retried.ref, retried.sha, retried.event, retried.status) == (
        first.repo,
        first.ref,
        first.sha,
        first.event,
        first.status,
    )
    log = httpx.get(server.url(f"/api/v1/runs/{retried.run_id}/jobs/check/log"), headers=AUTH)
    assert "FLAVOUR=mint" in log.text


def test_retry_run_refuses_a_run_that_has_not_ended(server: Served) -> None:
    run_id = trigger(server, SLOW="1")
    answer = httpx.post(server.url(f"/api/v1/runs/{run_id}/retry"), headers=AUTH)
    assert (answer.status_code, answer.json()["error"]["code"]) == (409, "run_not_finished")
    httpx.post(server.url(f"/api/v1/runs/{run_id}/cancel"), headers=AUTH)
    assert server.wait_for_run(run_id).status == "canceled"


def test_retry_run_of_an_unknown_run_is_404(server: Served) -> None:
    answer = httpx.post(server.url("/api/v1/runs/20261123T120000000Z-abcdefgh/retry"), headers=AUTH)
    assert (answer.status_code, answer.json()["error"]["code"]) == (404, "run_not_found")


def test_retry_run_needs_the_token(server: Served) -> None:
    answer = httpx.post(server.url("/api/v1/runs/20261123T120000000Z-abcdefgh/retry"))
    assert (answer.status_code, answer.json()["error"]["code"]) == (401, "unauthorized")
