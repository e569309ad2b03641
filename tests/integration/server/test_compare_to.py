"""GitLab `rules:changes:compare_to` through the real server: a `Push Hook` for a branch is
checked out, the paths changed since `main` (from their merge base) decide whether the
`docs` job runs, and a run resumed by a play keeps the diffs of its first plan even after
`main` moved (the mirror fetched it meanwhile). A real git repo in tmp_path is the remote."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from conveyor.server.app import create_app
from conveyor.settings import parse_settings
from conveyor.store import open_store
from conveyor.store.sql import SqlRunStore
from tests.fakes.git_repos import GitRepo
from tests.fakes.status_sinks import open_status_sinks
from tests.integration.server.conftest import gitlab_push_payload
from tests.integration.server.test_runs_api import AUTH, TOKEN, serve

HOOK_TOKEN = "gl-hook-token-0123456789abcdef"
PROJECT = "group/app"
DEADLINE_S = 20.0
PIPELINE = """\
stages: [test, deploy]
docs:
  stage: test
  script: echo docs
  rules:
    - changes:
        paths: ["docs/**/*"]
        compare_to: main
build:
  stage: test
  script: echo build
deploy:
  stage: deploy
  script: echo deployed
  rules:
    - when: manual
"""
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
class Live:
    client: httpx.Client
    store: SqlRunStore
    repo: GitRepo

    def push(self, branch: str, sha: str) -> str:
        payload = gitlab_push_payload(sha, project=PROJECT, ref=f"refs/heads/{branch}")
        headers = {"x-gitlab-token": HOOK_TOKEN, "x-gitlab-event": "Push Hook"}
        answer = self.client.post("/webhooks/gitlab", json=payload, headers=headers)
        assert answer.status_code == 202, answer.text
        return str(answer.json()["run_id"])

    def run(self, run_id: str) -> dict[str, Any]:
        return dict(self.client.get(f"/api/v1/runs/{run_id}", headers=AUTH).json())

    def wait_final(self, run_id: str, *, play_done: str | None = None) -> dict[str, Any]:
        """The run once final (and, with `play_done`, once that job's record is final too)."""
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            body = self.run(run_id)
            jobs = jobs_of(body)
            is_played = play_done is None or jobs.get(play_done) not in ("manual", "pending")
            if body["status"] in ("success", "failed", "canceled") and is_played:
                return body
            time.sleep(0.05)
        raise AssertionError(f"run {run_id} never ended: {self.run(run_id)}")


def jobs_of(run: dict[str, Any]) -> dict[str, str]:
    return {job["name"]: job["status"] for job in run["jobs"]}


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    repo = GitRepo.create(tmp_path / "remote", {".gitlab-ci.yml": PIPELINE, "README": "app\n"})
    with open_status_sinks() as sinks:
        env = {
            **os.environ,
            "CONVEYOR_API_TOKEN": TOKEN,
            "GL_HOOK_TOKEN": HOOK_TOKEN,
            "GL_STATUS_TOKEN": "glpat-statustoken0123456789abcd",
            "CONVEYOR_NOTIFY_NO_WAIT": "1",
        }
        text = SETTINGS.format(
            project=PROJECT, clone_url=repo.clone_url, api_url=sinks.gitlab_api_url
        )
        store = open_store(tmp_path / "home")
        app = create_app(parse_settings(text, env), store=store, env=env, home=tmp_path / "home")
        try:
            with serve(app) as url, httpx.Client(base_url=url, timeout=30) as client:
                yield Live(client, store, repo)
        finally:
            store.close()


def branch_with(repo: GitRepo, branch: str, files: dict[str, str]) -> str:
    """A branch off `main` with one commit writing `files`; its sha."""
    repo.git("checkout", "--quiet", "-B", branch, "main")
    return repo.commit(files, f"change on {branch}")


def test_compare_to_runs_the_job_when_the_branch_changed_its_paths(live: Live) -> None:
    sha = branch_with(live.repo, "feature", {"docs/guide.md": "how to\n"})
    final = live.wait_final(live.push("feature", sha))
    assert (final["status"], jobs_of(final)) == (
        "success",
        {"docs": "success", "build": "success", "deploy": "manual"},
    )


def test_compare_to_leaves_the_job_out_when_the_branch_changed_other_paths(live: Live) -> None:
    sha = branch_with(live.repo, "other", {"src/app.py": "print('hi')\n"})
    final = live.wait_final(live.push("other", sha))
    assert (final["status"], jobs_of(final)) == (
        "success",
        {"build": "success", "deploy": "manual"},
    )


def test_compare_to_resumed_run_keeps_its_first_diffs_after_main_moved(live: Live) -> None:
    first = live.repo.head("main")
    live.repo.commit({"docs/guide.md": "how to\n"}, "docs on main")
    sha = branch_with(live.repo, "feature", {"src/app.py": "print('hi')\n"})
    run_id = live.push("feature", sha)
    assert "docs" not in jobs_of(live.wait_final(run_id))
    # main is forced back before its docs commit: `main...feature` now holds docs/, so a
    # new plan of this commit would add `docs`. A run of main makes the mirror fetch it.
    live.repo.git("branch", "--force", "main", first)
    moved = live.client.post(
        "/api/v1/runs", json={"repo": PROJECT, "ref": "main"}, headers=AUTH
    ).json()
    assert moved["sha"] == first
    live.wait_final(str(moved["run_id"]))
    played = live.client.post(f"/api/v1/runs/{run_id}/jobs/deploy/play", headers=AUTH)
    final = live.wait_final(run_id, play_done="deploy")
    assert (played.status_code, final["status"], jobs_of(final)) == (
        202,
        "success",
        {"build": "success", "deploy": "success"},
    )
