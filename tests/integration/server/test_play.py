"""Playing a manual job runs it in the SAME run, as GitLab does: a real server on loopback,
a real git repo in tmp_path as the remote, fake GitHub/Slack sinks. A finished run is
resumed (same run id, the played job and the jobs it held back run, other records kept,
the final status recomputed and reported again); a live run takes the play while another
job is held by a release file; of two plays at once exactly one wins. A played job never
stays `pending` in a final run: canceling the resumed run before a worker takes it (the one
worker is held by a release file), or a checkout that fails, closes it as `canceled`."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from conveyor.model import Status
from conveyor.server.app import create_app
from conveyor.settings import parse_settings
from conveyor.store import open_store
from conveyor.store.sql import SqlRunStore
from tests.fakes.git_repos import GitRepo
from tests.fakes.status_sinks import StatusSinks, open_status_sinks
from tests.integration.server.test_runs_api import AUTH, TOKEN, serve

DEADLINE_S = 20.0
# GitLab flavour: every job in its own checkout, artifacts fetched from the run folder.
# `deploy` is a blocking manual job (rules: when: manual): it holds back the later stage.
GITLAB_PIPELINE = """\
stages: [build, deploy, verify]
build:
  stage: build
  script: echo built > out.txt
  artifacts: {paths: [out.txt]}
rescue:
  stage: build
  when: on_failure
  script: echo rescued
deploy:
  stage: deploy
  script: [cat out.txt, echo deployed]
  rules:
    - when: manual
smoke:
  stage: verify
  script: echo smoke
"""
# `slow` waits for the release file the test creates; `deploy` is played meanwhile.
LIVE_PIPELINE = """\
name: ci
jobs:
  slow:
    run: for i in $(seq 600); do [ -e "$RELEASE" ] && exit 0; sleep 0.05; done; exit 1
  deploy:
    manual: true
    run: echo deployed
  smoke:
    needs: [deploy]
    run: echo smoke
"""
# `none`: these jobs wait for files the tests create in tmp_path, which a sandbox's private
# /tmp hides (tests/integration/security runs the server's jobs sandboxed).
SETTINGS = """
[sandbox]
mode = "none"

[server]
api_token_env = "CONVEYOR_API_TOKEN"
public_url = "http://ci.example"
max_parallel_runs = {workers}

[[repos]]
name = "acme/app"
provider = "github"
clone_url = "{clone_url}"
secret_env = "ACME_HOOK_SECRET"
status_token_env = "ACME_STATUS_TOKEN"
api_url = "{api_url}"

[notify.slack]
webhook_url_env = "SLACK_WEBHOOK_URL"
"""


@dataclass
class Server:
    client: httpx.Client
    url: str
    store: SqlRunStore
    sinks: StatusSinks

    def trigger(self, **body: Any) -> str:
        response = self.client.post(
            "/api/v1/runs", json={"repo": "acme/app", "ref": "main", **body}, headers=AUTH
        )
        assert response.status_code == 202, response.text
        return str(response.json()["run_id"])

    def run(self, run_id: str) -> dict[str, Any]:
        return dict(self.client.get(f"/api/v1/runs/{run_id}", headers=AUTH).json())

    def play(self, run_id: str, job: str) -> httpx.Response:
        return self.client.post(f"/api/v1/runs/{run_id}/jobs/{job}/play", headers=AUTH)

    def wait(self, run_id: str, holds: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            body = self.run(run_id)
            if holds(body):
                return body
            time.sleep(0.05)
        raise AssertionError(f"run {run_id} never reached the state: {self.run(run_id)}")

    def wait_final(self, run_id: str) -> dict[str, Any]:
        return self.wait(run_id, lambda r: r["status"] in ("success", "failed", "canceled"))

    def wait_resumed(self, run_id: str) -> dict[str, Any]:
        """After a play of `deploy` (the run is `pending` from then): the new final record."""
        return self.wait(
            run_id, lambda r: r["status"] == "success" and jobs_of(r)["smoke"] == "success"
        )


def jobs_of(run: dict[str, Any]) -> dict[str, str]:
    return {job["name"]: job["status"] for job in run["jobs"]}


def attempts_of(run: dict[str, Any]) -> dict[str, int]:
    return {job["name"]: job["attempt"] for job in run["jobs"]}


@contextmanager
def open_server(tmp_path: Path, sinks: StatusSinks, *, workers: int = 2) -> Iterator[Server]:
    """A server on the remote `tmp_path/remote`, its state in `tmp_path/home`, running at
    most `workers` runs at once."""
    env = {
        **os.environ,
        "CONVEYOR_API_TOKEN": TOKEN,
        "ACME_HOOK_SECRET": "hook-secret-0123456789abcdef",
        "ACME_STATUS_TOKEN": "ghp_statustoken0123456789abcdefghij",
        "SLACK_WEBHOOK_URL": sinks.slack_webhook_url,
        "CONVEYOR_NOTIFY_NO_WAIT": "1",
    }
    text = SETTINGS.format(
        clone_url=tmp_path / "remote", api_url=sinks.github_api_url, workers=workers
    )
    settings = parse_settings(text, env)
    store = open_store(tmp_path / "home")
    app = create_app(settings, store=store, env=env, home=tmp_path / "home")
    try:
        with serve(app) as url, httpx.Client(base_url=url, timeout=30) as client:
            yield Server(client, url, store, sinks)
    finally:
        store.close()


@pytest.fixture
def sinks() -> Iterator[StatusSinks]:
    with open_status_sinks() as opened:
        yield opened


@pytest.fixture
def server(tmp_path: Path, sinks: StatusSinks) -> Iterator[Server]:
    GitRepo.create(tmp_path / "remote", {".gitlab-ci.yml": GITLAB_PIPELINE})
    with open_server(tmp_path, sinks) as opened:
        yield opened


@pytest.fixture
def finished(server: Server) -> tuple[Server, str]:
    """A run of GITLAB_PIPELINE that ended with `deploy` waiting to be played."""
    run_id = server.trigger()
    first = server.wait_final(run_id)
    assert (first["status"], jobs_of(first)) == (
        "success",
        {"build": "success", "rescue": "skipped", "deploy": "manual", "smoke": "skipped"},
    )
    return server, run_id


def test_play_of_finished_run_answers_202_with_the_same_run(finished: tuple[Server, str]) -> None:
    server, run_id = finished
    response = server.play(run_id, "deploy")
    assert (response.status_code, response.headers["location"], response.json()["run_id"]) == (
        202,
        f"/api/v1/runs/{run_id}",
        run_id,
    )


def test_play_of_finished_run_runs_the_job_and_its_held_back_stage(
    finished: tuple[Server, str],
) -> None:
    server, run_id = finished
    assert server.play(run_id, "deploy").status_code == 202
    final = server.wait_resumed(run_id)
    log = server.client.get(f"/api/v1/runs/{run_id}/jobs/deploy/log", headers=AUTH)
    texts = [line["text"] for line in map(orjson.loads, log.content.splitlines())]
    assert (final["status"], jobs_of(final)) == (
        "success",
        {"build": "success", "rescue": "skipped", "deploy": "success", "smoke": "success"},
    )
    assert texts[-2:] == ["built", "deployed"]  # build's artifact reached the resumed job
    assert [n["n"] for n in map(orjson.loads, log.content.splitlines())] == list(
        range(1, len(texts) + 1)
    )


def test_play_of_finished_run_keeps_the_records_of_other_jobs(
    finished: tuple[Server, str],
) -> None:
    server, run_id = finished
    before = {job["name"]: job for job in server.run(run_id)["jobs"]}
    assert server.play(run_id, "deploy").status_code == 202
    final = server.wait_resumed(run_id)
    after = {job["name"]: job for job in final["jobs"]}
    assert (before["build"], before["rescue"]) == (after["build"], after["rescue"])
    assert attempts_of(final) == {"build": 1, "rescue": 0, "deploy": 1, "smoke": 1}


def test_second_play_of_the_same_job_is_409(finished: tuple[Server, str]) -> None:
    server, run_id = finished
    assert server.play(run_id, "deploy").status_code == 202
    again = server.play(run_id, "deploy")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "job_not_manual")


def test_resumed_run_reports_its_new_final_status(finished: tuple[Server, str]) -> None:
    server, run_id = finished
    assert server.play(run_id, "deploy").status_code == 202
    statuses = [r.json() for r in server.sinks.wait_for(4, "github")]
    landed = [(s["state"], s["target_url"].rsplit("/", 1)[-1]) for s in statuses]
    assert [("pending", run_id), ("success", run_id)] * 2 == landed


def test_two_plays_at_once_exactly_one_wins(finished: tuple[Server, str]) -> None:
    server, run_id = finished
    barrier = threading.Barrier(2)
    codes: list[int] = []

    def play() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            barrier.wait(timeout=10)
            response = client.post(f"/api/v1/runs/{run_id}/jobs/deploy/play", headers=AUTH)
            codes.append(response.status_code)

    threads = [threading.Thread(target=play) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    final = server.wait_resumed(run_id)
    assert (sorted(codes), attempts_of(final)["deploy"]) == ([202, 409], 1)


def test_play_while_another_job_runs_ends_in_the_same_run(server: Server, tmp_path: Path) -> None:
    GitRepo(tmp_path / "remote").commit({".conveyor.yml": LIVE_PIPELINE})
    release = tmp_path / "release"
    run_id = server.trigger(variables={"RELEASE": str(release)})
    server.wait(run_id, lambda r: r["status"] == "running" and jobs_of(r).get("deploy") == "manual")
    response = server.play(run_id, "deploy")
    during = server.wait(run_id, lambda r: jobs_of(r)["smoke"] == "success")
    release.touch()
    final = server.wait_final(run_id)
    assert (response.status_code, response.json()["run_id"]) == (202, run_id)
    assert (jobs_of(during)["slow"], during["status"]) == ("running", "running")
    assert (final["status"], jobs_of(final)) == (
        "success",
        {"slow": "success", "deploy": "success", "smoke": "success"},
    )


def test_play_of_a_canceled_run_is_409(server: Server, tmp_path: Path) -> None:
    GitRepo(tmp_path / "remote").commit({".conveyor.yml": LIVE_PIPELINE})
    run_id = server.trigger(variables={"RELEASE": str(tmp_path / "never")})
    server.wait(run_id, lambda r: jobs_of(r).get("deploy") == "manual")
    assert server.client.post(f"/api/v1/runs/{run_id}/cancel", headers=AUTH).status_code == 202
    server.wait_final(run_id)
    response = server.play(run_id, "deploy")
    assert (response.status_code, response.json()["error"]["code"]) == (409, "run_canceled")
    assert response.json()["error"]["message"] == (  # worded as the engine words it
        f"run {run_id}: the run was canceled, its manual jobs can no longer be played "
        "(trigger a new run)"
    )


def test_play_recorded_before_a_restart_resumes_the_run(tmp_path: Path, sinks: StatusSinks) -> None:
    GitRepo.create(tmp_path / "remote", {".gitlab-ci.yml": GITLAB_PIPELINE})
    with open_server(tmp_path, sinks) as first:
        run_id = first.trigger()
        first.wait_final(run_id)
        # What a play writes before its run is picked up again: the server then dies.
        stored = first.store.get_run(run_id)
        assert stored is not None
        deploy = next(job for job in stored.jobs if job.name == "deploy")
        first.store.update_run(run_id, status=Status.PENDING)
        first.store.save_job(run_id, replace(deploy, status=Status.PENDING, reason=None))
    with open_server(tmp_path, sinks) as second:
        final = second.wait_resumed(run_id)
    assert (jobs_of(final), attempts_of(final)["deploy"]) == (
        {"build": "success", "rescue": "skipped", "deploy": "success", "smoke": "success"},
        1,
    )


@dataclass
class Busy:
    """A one-worker server whose worker is held by a run until `release` exists; `run_id`
    is a finished run of GITLAB_PIPELINE with `deploy` waiting to be played."""

    server: Server
    run_id: str
    release: Path


@pytest.fixture
def busy(tmp_path: Path, sinks: StatusSinks) -> Iterator[Busy]:
    remote = GitRepo.create(tmp_path / "remote", {".gitlab-ci.yml": GITLAB_PIPELINE})
    release = tmp_path / "release"
    with open_server(tmp_path, sinks, workers=1) as server:
        run_id = server.trigger()
        assert jobs_of(server.wait_final(run_id))["deploy"] == "manual"
        remote.commit({".conveyor.yml": LIVE_PIPELINE})
        holder = server.trigger(variables={"RELEASE": str(release)})
        server.wait(holder, lambda r: jobs_of(r).get("slow") == "running")
        try:
            yield Busy(server, run_id, release)
        finally:
            release.touch()


def test_play_of_finished_run_reopens_it_pending_with_no_finished_time(busy: Busy) -> None:
    assert busy.server.play(busy.run_id, "deploy").status_code == 202
    reopened = busy.server.run(busy.run_id)  # the one worker is busy: nothing picks it up
    assert (reopened["status"], reopened["finished_at"], reopened["reason"]) == (
        "pending",
        None,
        None,
    )
    assert jobs_of(reopened)["deploy"] == "pending"


def test_cancel_of_resumed_run_before_a_worker_takes_it_cancels_the_played_job(
    busy: Busy,
) -> None:
    server = busy.server
    assert server.play(busy.run_id, "deploy").status_code == 202
    canceled = server.client.post(f"/api/v1/runs/{busy.run_id}/cancel", headers=AUTH)
    final = server.run(busy.run_id)
    deploy = next(job for job in final["jobs"] if job["name"] == "deploy")
    assert (canceled.status_code, final["status"], deploy["status"], deploy["reason"]) == (
        202,
        "canceled",
        "canceled",
        "canceled before it started",
    )


def test_canceled_resumed_run_stays_canceled_once_the_worker_is_free(busy: Busy) -> None:
    server = busy.server
    assert server.play(busy.run_id, "deploy").status_code == 202
    assert server.client.post(f"/api/v1/runs/{busy.run_id}/cancel", headers=AUTH).is_success
    busy.release.touch()
    # The one worker takes the canceled run's queued id once it is free and must leave the
    # run alone; a run triggered now is queued after that id, so once it ended the worker
    # has been past the canceled run.
    later = server.wait_final(server.trigger(variables={"RELEASE": str(busy.release)}))
    final = server.run(busy.run_id)
    assert (later["status"], final["status"], jobs_of(final)["deploy"]) == (
        "success",
        "canceled",
        "canceled",
    )


def test_resumed_run_whose_checkout_fails_cancels_the_played_job(
    tmp_path: Path, sinks: StatusSinks
) -> None:
    GitRepo.create(tmp_path / "remote", {".gitlab-ci.yml": GITLAB_PIPELINE})
    with open_server(tmp_path, sinks) as first:
        run_id = first.trigger()
        first.wait_final(run_id)
    # Stopped, so its worker has removed the worktree. The commit can no longer be
    # fetched: the mirror and the remote are gone.
    shutil.rmtree(tmp_path / "home" / "mirrors")
    shutil.rmtree(tmp_path / "remote")
    with open_server(tmp_path, sinks) as second:
        assert second.play(run_id, "deploy").status_code == 202
        final = second.wait(run_id, lambda r: r["status"] == "failed")
    deploy = next(job for job in final["jobs"] if job["name"] == "deploy")
    assert (deploy["status"], deploy["reason"], jobs_of(final)["build"]) == (
        "canceled",
        "not run: the run failed before its jobs started",
        "success",
    )
