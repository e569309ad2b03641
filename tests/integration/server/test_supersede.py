"""Superseded runs on a real server: a burst of pushes to one branch ends with only the
newest run's jobs running; the others are canceled, naming the run that superseded them."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from conveyor.model import Event, EventKind, RunRecord, Status
from conveyor.runs.records import new_run_record
from conveyor.store import open_store
from conveyor.store.paths import new_run_id
from tests.fakes.clock import FakeClock
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


# GitLab's `interruptible` auto-cancel: only the interruptible jobs of the older run are
# canceled, running or waiting; its running non-interruptible job goes on to its end.
INTERRUPTIBLE = """\
workflow:
  auto_cancel:
    on_new_commit: interruptible
deploy:
  needs: []
  script:
    - while [ ! -e {release} ]; do sleep 0.05; done
lint:
  needs: []
  interruptible: true
  script: [sleep 60]
report:
  needs: [lint]
  interruptible: true
  script: [echo report]
notify:
  needs: [report]
  script: [echo notified]
"""


def _wait_jobs(get_run, run_id: str, *names: str) -> RunRecord:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 30
    while True:
        run = get_run(run_id)
        running = {j.name for j in run.jobs if j.status is Status.RUNNING} if run else set()
        if set(names) <= running:
            return run  # type: ignore[no-any-return]
        if time.monotonic() > deadline:
            raise AssertionError(run)
        time.sleep(0.05)


def test_interruptible_mode_cancels_only_the_interruptible_jobs_of_the_older_run(
    tmp_path: Path,
) -> None:
    release = tmp_path / "release"
    remote = GitRepo.create(
        tmp_path / "remote", {".gitlab-ci.yml": INTERRUPTIBLE.format(release=release)}
    )
    first = remote.head()
    second = remote.commit({"n.txt": "2"})
    auth = {"authorization": f"Bearer {API_TOKEN}"}
    with serve_app(make_settings(remote, sandbox="none"), home=tmp_path / "home") as server:
        body = github_push_body(first)
        older_id = httpx.post(
            server.url("/webhooks/github"), content=body, headers=github_headers(body)
        ).json()["run_id"]
        _wait_jobs(server.store.get_run, older_id, "deploy", "lint")
        body = github_push_body(second, before=first)
        newer_id = httpx.post(
            server.url("/webhooks/github"), content=body, headers=github_headers(body)
        ).json()["run_id"]
        reason = f"superseded by run {newer_id} (a newer commit of the same branch or request)"
        deadline = time.monotonic() + 30
        while True:  # lint canceled, report with it; deploy still running
            during = server.store.get_run(older_id)
            assert during is not None
            jobs = {j.name: j for j in during.jobs}
            if jobs["lint"].status.is_final and jobs["report"].status.is_final:
                break
            assert time.monotonic() < deadline, during
            time.sleep(0.05)
        release.write_text("go\n")  # the deploy job may end now
        older = server.wait_for_run(older_id)
        httpx.post(server.url(f"/api/v1/runs/{newer_id}/cancel"), headers=auth)
        server.wait_for_run(newer_id)
        lint_log = httpx.get(
            server.url(f"/api/v1/runs/{older_id}/jobs/lint/log"), headers=auth
        ).text
    assert (jobs["deploy"].status, during.status) == (Status.RUNNING, Status.RUNNING)
    final = {j.name: (j.status, j.reason) for j in older.jobs}
    assert final["lint"] == (Status.CANCELED, reason)
    assert final["report"] == (Status.CANCELED, reason)  # waiting for lint: canceled too
    assert final["deploy"] == (Status.SUCCESS, None)  # not interruptible: ran to its end
    assert final["notify"][0] is Status.SKIPPED  # needs a canceled job
    assert (older.status, older.reason) == (Status.CANCELED, reason)
    assert f"canceled: {reason}" in lint_log


def test_a_waiting_run_superseded_is_decided_once_planned(tmp_path: Path) -> None:
    # One worker: the middle run waits while the first runs; the newest supersedes it
    # before it is planned. Once planned, only its interruptible jobs are canceled.
    release = tmp_path / "release"
    remote = GitRepo.create(
        tmp_path / "remote", {".gitlab-ci.yml": INTERRUPTIBLE.format(release=release)}
    )
    shas = [remote.head(), remote.commit({"n.txt": "2"}), remote.commit({"n.txt": "3"})]
    auth = {"authorization": f"Bearer {API_TOKEN}"}
    settings = make_settings(remote, sandbox="none", max_parallel_runs=1)
    with serve_app(settings, home=tmp_path / "home") as server:
        ids = []
        for n, sha in enumerate(shas):
            body = github_push_body(sha)
            ids.append(
                httpx.post(
                    server.url("/webhooks/github"), content=body, headers=github_headers(body)
                ).json()["run_id"]
            )
            if n == 0:
                _wait_jobs(server.store.get_run, ids[0], "deploy", "lint")
        waiting = server.store.get_run(ids[1])
        release.write_text("go\n")
        middle = server.wait_for_run(ids[1])
        _wait_jobs(server.store.get_run, ids[2], "lint")
        httpx.post(server.url(f"/api/v1/runs/{ids[2]}/cancel"), headers=auth)
        server.wait_for_run(ids[2])
    assert waiting is not None and waiting.status is Status.PENDING
    reason = f"superseded by run {ids[2]} (a newer commit of the same branch or request)"
    final = {j.name: (j.status, j.reason) for j in middle.jobs}
    assert final["lint"] == (Status.CANCELED, reason)
    assert final["report"] == (Status.CANCELED, reason)
    assert final["deploy"] == (Status.SUCCESS, None)
    assert (middle.status, middle.reason) == (Status.CANCELED, reason)


def test_runs_still_waiting_at_a_restart_are_superseded_again(
    tmp_path: Path, remote: GitRepo
) -> None:
    # Stored `pending` by a server that stopped before a worker took them: the older one is
    # superseded by the newer when the next server starts (the marks were in memory).
    first = remote.commit({".conveyor.yml": SLOW})
    second = remote.commit({"n.txt": "2"})
    home = tmp_path / "home"
    store = open_store(home)
    ids = []
    for n, sha in enumerate((first, second)):
        event = Event(kind=EventKind.PUSH, ref="main", sha=sha, repo="acme/app", message="x")
        run = new_run_record(
            event,
            new_run_id(),
            clock=FakeClock(datetime.now(UTC) + timedelta(seconds=n)),
            trigger={},
        )
        ids.append(store.create_run(run).run_id)
    store.close()
    auth = {"authorization": f"Bearer {API_TOKEN}"}
    with serve_app(make_settings(remote), home=home) as server:
        older = server.wait_for_run(ids[0])
        _wait_running(server.store.get_run, ids[1])
        httpx.post(server.url(f"/api/v1/runs/{ids[1]}/cancel"), headers=auth)
        server.wait_for_run(ids[1])
    assert (older.status, older.reason) == (
        Status.CANCELED,
        f"superseded by run {ids[1]} (a newer commit of the same branch or request)",
    )
