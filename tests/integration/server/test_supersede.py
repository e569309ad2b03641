"""Superseded runs on a real server: a burst of pushes to one branch ends with only the
newest run's jobs running; the others are canceled, naming the run that superseded them."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from conveyor.model import RunRecord, Status
from tests.fakes.git_repos import GitRepo
from tests.integration.server.conftest import (
    API_TOKEN,
    github_headers,
    github_push_body,
    make_settings,
    serve_app,
)
from tests.integration.server.test_change_triggers import pull_request_body

SLOW = """\
name: slow
jobs:
  work:
    interruptible: true
    run: sleep 60
"""


@pytest.mark.timeout(150)  # 20 checkouts: seconds alone, much longer on a loaded machine
def test_burst_of_20_pushes_leaves_only_the_newest_running(tmp_path: Path, remote: GitRepo) -> None:
    remote.commit({".conveyor.yml": SLOW})
    shas = [remote.commit({"n.txt": str(n)}, f"change {n}") for n in range(20)]
    with serve_app(make_settings(remote), home=tmp_path / "home") as server:
        run_ids = []
        for sha in shas:
            body = github_push_body(sha)
            response = httpx.post(
                server.url("/webhooks/github"), content=body, headers=github_headers(body)
            )
            assert response.status_code == 202
            run_ids.append(response.json()["run_id"])
        newest = run_ids[-1]
        runs = _wait_for_superseded(server.store.get_run, run_ids)
        httpx.post(
            server.url(f"/api/v1/runs/{newest}/cancel"),
            headers={"authorization": f"Bearer {API_TOKEN}"},
        )
        server.wait_for_run(newest)
    order = {run_id: n for n, run_id in enumerate(run_ids)}
    for run_id in run_ids[:-1]:
        run = runs[run_id]
        assert run.status is Status.CANCELED
        assert (run.reason or "").startswith("superseded by run ")
        by = (run.reason or "").split()[3]
        assert order[by] > order[run_id]  # a newer run of the burst
    assert runs[newest].status is Status.RUNNING
    assert [job.status for job in runs[newest].jobs] == [Status.RUNNING]


def _wait_for_superseded(get_run, run_ids: list[str]) -> dict[str, RunRecord]:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 120  # below the test's timeout: fail with the runs' states
    while True:
        runs = {run_id: get_run(run_id) for run_id in run_ids}
        older_done = all(runs[r] is not None and runs[r].status.is_final for r in run_ids[:-1])
        newest = runs[run_ids[-1]]
        running = newest is not None and any(j.status is Status.RUNNING for j in newest.jobs)
        if older_done and running:
            return runs
        if time.monotonic() > deadline:
            raise AssertionError({r: (x.status, x.reason) if x else None for r, x in runs.items()})
        time.sleep(0.05)


KEEP = """\
name: keep
jobs:
  work:
    run: sleep 60
"""


def _wait_running(get_run, run_id: str) -> RunRecord:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 30
    while True:
        run = get_run(run_id)
        if run is not None and any(j.status is Status.RUNNING for j in run.jobs):
            return run  # type: ignore[no-any-return]
        if time.monotonic() > deadline:
            raise AssertionError(run)
        time.sleep(0.05)


def test_conservative_keeps_a_run_whose_non_interruptible_job_started(
    tmp_path: Path, remote: GitRepo
) -> None:
    first = remote.commit({".conveyor.yml": KEEP})
    second = remote.commit({"n.txt": "2"})
    auth = {"authorization": f"Bearer {API_TOKEN}"}
    with serve_app(make_settings(remote), home=tmp_path / "home") as server:
        ids = []
        for sha in (first, second):
            body = github_push_body(sha)
            response = httpx.post(
                server.url("/webhooks/github"), content=body, headers=github_headers(body)
            )
            ids.append(response.json()["run_id"])
            _wait_running(server.store.get_run, ids[-1])
        older = server.store.get_run(ids[0])
        for run_id in ids:
            httpx.post(server.url(f"/api/v1/runs/{run_id}/cancel"), headers=auth)
            server.wait_for_run(run_id)
    assert older is not None and older.status is Status.RUNNING


def test_new_commit_on_a_pull_request_supersedes_its_older_run(
    tmp_path: Path, remote: GitRepo
) -> None:
    remote.branch("feature")
    first = remote.commit({".conveyor.yml": SLOW})
    second = remote.commit({"n.txt": "2"})
    remote.git("checkout", "--quiet", "main")
    auth = {"authorization": f"Bearer {API_TOKEN}"}
    with serve_app(make_settings(remote), home=tmp_path / "home") as server:
        ids = []
        for sha in (first, second):
            body = pull_request_body(sha, action="synchronize")
            response = httpx.post(
                server.url("/webhooks/github"),
                content=body,
                headers=github_headers(body, event="pull_request"),
            )
            ids.append(response.json()["run_id"])
        older = server.wait_for_run(ids[0])
        _wait_running(server.store.get_run, ids[1])
        httpx.post(server.url(f"/api/v1/runs/{ids[1]}/cancel"), headers=auth)
        server.wait_for_run(ids[1])
    assert (older.status, older.reason) == (
        Status.CANCELED,
        f"superseded by run {ids[1]} (a newer commit of the same branch or request)",
    )
