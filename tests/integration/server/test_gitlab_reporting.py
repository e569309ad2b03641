"""GitLab end to end through the real server: a `Push Hook` delivery is checked out, run,
and its commit statuses reach a fake GitLab (`POST /api/v4/projects/:id/statuses/:sha`) with
GitLab's states, the project path URL-encoded and the token only in `PRIVATE-TOKEN`; a
429 with Retry-After is retried and the status still lands."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import orjson
import pytest

from conveyor.model import EventKind, RunRecord, Status
from conveyor.server.app import create_app
from conveyor.settings import parse_settings
from conveyor.store import open_store
from conveyor.store.base import RunStore
from tests.fakes.git_repos import GitRepo
from tests.fakes.status_sinks import Answer, Recorded, StatusSinks, open_status_sinks
from tests.integration.server.conftest import gitlab_push_payload
from tests.integration.server.test_runs_api import serve

PAYLOADS = Path(__file__).parents[2] / "payloads"
HOOK_TOKEN = "gl-hook-token-0123456789abcdef"
STATUS_TOKEN = "glpat-statustoken0123456789abcd"
PROJECT = "group/sub/app"
PASSING = "name: ci\njobs:\n  build:\n    run: echo built\n"
FAILING = "name: ci\njobs:\n  build:\n    run: echo broken; exit 3\n"
SETTINGS = """
[server]
api_token_env = "CONVEYOR_API_TOKEN"
public_url = "http://ci.example"

[[repos]]
name = "{project}"
provider = "gitlab"
clone_url = "{clone_url}"
secret_env = "GL_HOOK_TOKEN"
status_token_env = "GL_STATUS_TOKEN"
api_url = "{api_url}"
"""


@dataclass
class GitLabLive:
    client: httpx.Client
    store: RunStore
    repo: GitRepo
    sinks: StatusSinks

    def push(self, sha: str) -> str:
        payload = gitlab_push_payload(sha, project=PROJECT)
        headers = {"x-gitlab-token": HOOK_TOKEN, "x-gitlab-event": "Push Hook"}
        answer = self.client.post("/webhooks/gitlab", json=payload, headers=headers)
        assert answer.status_code == 202, answer.text
        return str(answer.json()["run_id"])

    def wait(self, run_id: str) -> RunRecord:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            run = self.store.get_run(run_id)
            if run is not None and run.status.is_final:
                return run
            time.sleep(0.05)
        raise AssertionError(f"run {run_id} never ended")


@pytest.fixture
def live(tmp_path: Path) -> Iterator[GitLabLive]:
    repo = GitRepo.create(tmp_path / "remote", {".conveyor.yml": PASSING})
    with open_status_sinks() as sinks:
        env = {
            **os.environ,
            "CONVEYOR_API_TOKEN": "api-token-0123456789abcdefghij",
            "GL_HOOK_TOKEN": HOOK_TOKEN,
            "GL_STATUS_TOKEN": STATUS_TOKEN,
            "CONVEYOR_NOTIFY_NO_WAIT": "1",
        }
        text = SETTINGS.format(
            project=PROJECT, clone_url=repo.clone_url, api_url=sinks.gitlab_api_url
        )
        store = open_store(tmp_path / "home")
        app = create_app(parse_settings(text, env), store=store, env=env, home=tmp_path / "home")
        with serve(app) as url, httpx.Client(base_url=url, timeout=30) as client:
            yield GitLabLive(client, store, repo, sinks)
        store.close()


def _states(requests: list[Recorded]) -> list[str]:
    return [r.json()["state"] for r in requests if r.body]


def test_gitlab_push_reports_running_then_success_to_the_commit(live: GitLabLive) -> None:
    sha = live.repo.head()
    run = live.wait(live.push(sha))
    requests = live.sinks.wait_for(2, "gitlab")
    assert run.status is Status.SUCCESS
    assert {r.path for r in requests} == {
        f"/api/v4/projects/{quote(PROJECT, safe='')}/statuses/{sha}"
    }
    assert _states(requests) == ["running", "success"]
    assert {r.headers.get("private-token") for r in requests} == {STATUS_TOKEN}
    assert {(r.json()["name"], r.json()["ref"]) for r in requests} == {("conveyor/ci", "main")}
    assert requests[-1].json()["target_url"] == f"http://ci.example/api/v1/runs/{run.run_id}"


def test_gitlab_failed_run_reports_failed(live: GitLabLive) -> None:
    sha = live.repo.commit({".conveyor.yml": FAILING})
    run = live.wait(live.push(sha))
    requests = live.sinks.wait_for(2, "gitlab")
    assert (run.status, _states(requests)) == (Status.FAILED, ["running", "failed"])


def test_gitlab_rate_limited_status_is_retried_after_retry_after(live: GitLabLive) -> None:
    live.sinks.script("gitlab", Answer(429, headers={"Retry-After": "1"}))
    run = live.wait(live.push(live.repo.head()))
    requests = live.sinks.wait_for(3, "gitlab")
    assert run.status is Status.SUCCESS
    # The 429'd "running" is sent again; the final state still lands last.
    assert _states(requests)[-1] == "success"
    assert _states(requests).count("running") == 2


def test_gitlab_merge_request_reports_to_its_head_commit(live: GitLabLive) -> None:
    live.repo.branch("feature")
    sha = live.repo.commit({"src/a.py": "a = 1\n"})
    live.repo.git("checkout", "--quiet", "main")
    payload = orjson.loads((PAYLOADS / "gitlab" / "merge_request.open.json").read_bytes())
    payload["project"]["path_with_namespace"] = PROJECT
    attributes = payload["object_attributes"]
    attributes["last_commit"]["id"], attributes["source_branch"] = sha, "feature"
    attributes["target_branch"] = "main"
    headers = {"x-gitlab-token": HOOK_TOKEN, "x-gitlab-event": "Merge Request Hook"}
    answer = live.client.post("/webhooks/gitlab", json=payload, headers=headers)
    assert answer.status_code == 202, answer.text
    run = live.wait(str(answer.json()["run_id"]))
    requests = live.sinks.wait_for(2, "gitlab")
    assert (run.status, run.event) == (Status.SUCCESS, EventKind.MERGE_REQUEST)
    assert {r.path for r in requests} == {
        f"/api/v4/projects/{quote(PROJECT, safe='')}/statuses/{sha}"
    }
    assert _states(requests) == ["running", "success"]
