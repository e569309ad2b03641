"""Pull and merge request deliveries against a real server: the services' example payloads
(tests/payloads), signed as GitHub and GitLab sign them, a real store and real git remotes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from conveyor.model import EventKind, Status
from tests.fakes.git_repos import GitRepo
from tests.integration.server.conftest import (
    API_TOKEN,
    ENV,
    GL_TOKEN,
    github_headers,
    github_push_body,
    make_settings,
    serve_app,
)

PAYLOADS = Path(__file__).parents[2] / "payloads"
SECRET_PIPELINE = """\
name: pr
jobs:
  facts:
    run: printf '%s|%s|%s|%s|%s' "$CONVEYOR_EVENT" "$CONVEYOR_PR_NUMBER" \
"$CONVEYOR_PR_TARGET_BRANCH" "$CONVEYOR_PR_TITLE" "$CONVEYOR_PR_IS_FORK" > {out}/facts
  deploy:
    secrets: [DEPLOY_TOKEN]
    run: echo "${{DEPLOY_TOKEN:-unset}}" > {out}/token
"""
GITLAB_PIPELINE = """\
workflow:
  rules:
    - if: $CI_PIPELINE_SOURCE == "merge_request_event"
mr-only:
  rules:
    - if: $CI_MERGE_REQUEST_TARGET_BRANCH_NAME == "main"
      changes: [src/**/*]
  script:
    - printf '%s|%s|%s' "$CI_MERGE_REQUEST_IID" "$CI_MERGE_REQUEST_LABELS" \
"$CI_MERGE_REQUEST_DIFF_BASE_SHA" > {out}/mr
docs-only:
  rules:
    - changes: [docs/**/*]
  script: [echo docs]
"""


# The jobs here write what they saw to tmp_path, which a sandbox's private /tmp hides
# (tests/integration/security runs the server's jobs sandboxed).
UNCONFINED = "none"


def pull_request_body(
    sha: str, *, action: str = "opened", fork: bool = False, base_sha: str | None = None
) -> bytes:
    payload: dict[str, Any] = orjson.loads(
        (PAYLOADS / "github" / f"pull_request.{action}.json").read_bytes()
    )
    pull = payload["pull_request"]
    payload["repository"]["full_name"] = pull["base"]["repo"]["full_name"] = "acme/app"
    pull["head"]["repo"]["full_name"] = "stranger/app" if fork else "acme/app"
    pull["head"]["sha"], pull["head"]["ref"], pull["base"]["ref"] = sha, "feature", "main"
    pull["title"] = "Fix it; $(touch /tmp/pwned) `id`"
    if base_sha is not None:
        pull["base"]["sha"] = base_sha
    return orjson.dumps(payload)


def _remote_with_feature(remote: GitRepo, files: dict[str, str], message: str = "change") -> str:
    remote.branch("feature")
    sha = remote.commit(files, message)
    remote.git("checkout", "--quiet", "main")
    return sha


def test_pull_request_runs_the_head_with_its_facts_and_secrets(
    tmp_path: Path, remote: GitRepo
) -> None:
    sha = _remote_with_feature(remote, {".conveyor.yml": SECRET_PIPELINE.format(out=tmp_path)})
    env = {**ENV, "DEPLOY_TOKEN": "deploy-token-value-0123456789"}
    body = pull_request_body(sha)
    with serve_app(
        make_settings(remote, sandbox=UNCONFINED), home=tmp_path / "home", env=env
    ) as server:
        response = httpx.post(
            server.url("/webhooks/github"),
            content=body,
            headers=github_headers(body, event="pull_request"),
        )
        assert response.status_code == 202
        run = server.wait_for_run(response.json()["run_id"])
    assert (run.status, run.event, run.sha, run.ref) == (
        Status.SUCCESS,
        EventKind.PULL_REQUEST,
        sha,
        "feature",
    )
    facts = (tmp_path / "facts").read_text()
    assert facts == "pull_request|2|main|Fix it; $(touch /tmp/pwned) `id`|false"
    assert (tmp_path / "token").read_text().strip() == "deploy-token-value-0123456789"


def test_fork_pull_request_skips_jobs_that_declare_secrets(tmp_path: Path, remote: GitRepo) -> None:
    sha = _remote_with_feature(remote, {".conveyor.yml": SECRET_PIPELINE.format(out=tmp_path)})
    env = {**ENV, "DEPLOY_TOKEN": "deploy-token-value-0123456789"}
    body = pull_request_body(sha, action="synchronize", fork=True)
    with serve_app(
        make_settings(remote, sandbox=UNCONFINED), home=tmp_path / "home", env=env
    ) as server:
        response = httpx.post(
            server.url("/webhooks/github"),
            content=body,
            headers=github_headers(body, event="pull_request"),
        )
        run = server.wait_for_run(response.json()["run_id"])
    jobs = {job.name: job for job in run.jobs}
    assert run.status is Status.SUCCESS
    assert jobs["facts"].status is Status.SUCCESS
    assert (tmp_path / "facts").read_text().endswith("|true")
    assert jobs["deploy"].status is Status.SKIPPED
    assert "comes from a fork" in (jobs["deploy"].reason or "")
    assert not (tmp_path / "token").exists()


def test_fork_pull_request_with_omit_runs_jobs_without_secrets(
    tmp_path: Path, remote: GitRepo
) -> None:
    sha = _remote_with_feature(remote, {".conveyor.yml": SECRET_PIPELINE.format(out=tmp_path)})
    env = {**ENV, "DEPLOY_TOKEN": "deploy-token-value-0123456789"}
    settings = make_settings(remote, sandbox=UNCONFINED)
    repos = tuple(
        r.model_copy(update={"fork_secrets": "omit"}) if r.provider == "github" else r
        for r in settings.repos
    )
    settings = settings.model_copy(update={"repos": repos})
    body = pull_request_body(sha, fork=True)
    with serve_app(settings, home=tmp_path / "home", env=env) as server:
        response = httpx.post(
            server.url("/webhooks/github"),
            content=body,
            headers=github_headers(body, event="pull_request"),
        )
        run = server.wait_for_run(response.json()["run_id"])
    assert {job.name: job.status for job in run.jobs} == {
        "facts": Status.SUCCESS,
        "deploy": Status.SUCCESS,
    }
    assert (tmp_path / "token").read_text().strip() == "unset"


def test_closed_pull_request_runs_nothing(tmp_path: Path, remote: GitRepo) -> None:
    body = pull_request_body(remote.head(), action="closed")
    with serve_app(make_settings(remote, sandbox=UNCONFINED), home=tmp_path / "home") as server:
        response = httpx.post(
            server.url("/webhooks/github"),
            content=body,
            headers=github_headers(body, event="pull_request"),
        )
        runs = server.store.list_runs()
    assert (response.status_code, response.json()["status"], runs) == (202, "ignored", [])


def test_gitlab_merge_request_rules_decide_as_on_gitlab(tmp_path: Path, remote: GitRepo) -> None:
    base = remote.commit({".gitlab-ci.yml": GITLAB_PIPELINE.format(out=tmp_path)})
    remote.branch("feature")
    sha = remote.commit({"src/app.py": "print(1)\n"})
    remote.git("checkout", "--quiet", "main")
    remote.commit({"docs/later.md": "changed on main after the fork\n"})  # not in the MR's diff
    payload: dict[str, Any] = orjson.loads(
        (PAYLOADS / "gitlab" / "merge_request.open.json").read_bytes()
    )
    payload["project"]["path_with_namespace"] = "group/sub/app"
    attributes = payload["object_attributes"]
    attributes["last_commit"]["id"], attributes["source_branch"] = sha, "feature"
    attributes["target_branch"] = "main"
    settings = make_settings(remote, sandbox=UNCONFINED)
    repos = tuple(
        r.model_copy(update={"pipeline_file": ".gitlab-ci.yml"}) if r.provider == "gitlab" else r
        for r in settings.repos
    )
    settings = settings.model_copy(update={"repos": repos})
    headers = {
        "content-type": "application/json",
        "x-gitlab-event": "Merge Request Hook",
        "x-gitlab-token": GL_TOKEN,
    }
    with serve_app(settings, home=tmp_path / "home") as server:
        response = httpx.post(
            server.url("/webhooks/gitlab"), content=orjson.dumps(payload), headers=headers
        )
        assert response.status_code == 202
        run = server.wait_for_run(response.json()["run_id"])
    assert (run.status, run.event) == (Status.SUCCESS, EventKind.MERGE_REQUEST)
    assert [job.name for job in run.jobs] == ["mr-only"]
    assert (tmp_path / "mr").read_text() == f"1|API|{base}"


def test_skip_ci_push_is_recorded_skipped_with_the_reason(tmp_path: Path, remote: GitRepo) -> None:
    sha = remote.commit({"README": "typo\n"}, "fix a typo [skip ci]")
    body = github_push_body(sha, head_commit={"id": sha, "message": "fix a typo [skip ci]"})
    with serve_app(make_settings(remote, sandbox=UNCONFINED), home=tmp_path / "home") as server:
        response = httpx.post(
            server.url("/webhooks/github"), content=body, headers=github_headers(body)
        )
        assert response.status_code == 202
        run = server.wait_for_run(response.json()["run_id"], timeout_s=2)
    assert (run.status, run.reason, run.jobs) == (
        Status.SKIPPED,
        "skipped: the head commit's message says [skip ci]",
        (),
    )


def test_skip_ci_pull_request_reads_the_head_commit_and_is_skipped(
    tmp_path: Path, remote: GitRepo
) -> None:
    # GitHub's pull_request payload carries no commit message: the server reads it from git.
    message = "Fix a typo\n\nNothing to build [ci skip]"
    sha = _remote_with_feature(remote, {"README": "typo fixed\n"}, message)
    body = pull_request_body(sha, action="synchronize")
    with serve_app(make_settings(remote, sandbox=UNCONFINED), home=tmp_path / "home") as server:
        response = httpx.post(
            server.url("/webhooks/github"),
            content=body,
            headers=github_headers(body, event="pull_request"),
        )
        assert response.status_code == 202
        run = server.wait_for_run(response.json()["run_id"])
    assert (run.status, run.event, run.sha, run.started_at, run.jobs) == (
        Status.SKIPPED,
        EventKind.PULL_REQUEST,
        sha,
        None,
        (),
    )
    assert run.reason == "skipped: the head commit's message says [ci skip]"


def test_pull_request_jobs_see_the_head_commit_message(tmp_path: Path, remote: GitRepo) -> None:
    pipeline = (
        "say:\n  rules: [{if: $CI_PIPELINE_SOURCE == 'merge_request_event'}]\n"
        f"  script:\n    - printf '%s' \"$CI_COMMIT_MESSAGE\" > {tmp_path}/m\n"
    )
    sha = _remote_with_feature(remote, {".gitlab-ci.yml": pipeline}, "Add a\n\nwith a body")
    settings = make_settings(remote, sandbox=UNCONFINED)
    repos = tuple(r.model_copy(update={"pipeline_file": ".gitlab-ci.yml"}) for r in settings.repos)
    body = pull_request_body(sha)
    with serve_app(settings.model_copy(update={"repos": repos}), home=tmp_path / "home") as server:
        response = httpx.post(
            server.url("/webhooks/github"),
            content=body,
            headers=github_headers(body, event="pull_request"),
        )
        run = server.wait_for_run(response.json()["run_id"])
    assert run.status is Status.SUCCESS
    assert (tmp_path / "m").read_text() == "Add a\n\nwith a body"


def test_skip_ci_pull_request_supersedes_nothing(tmp_path: Path, remote: GitRepo) -> None:
    slow = "name: slow\njobs:\n  work:\n    interruptible: true\n    run: sleep 60\n"
    first = _remote_with_feature(remote, {".conveyor.yml": slow})
    remote.git("checkout", "--quiet", "feature")
    second = remote.commit({"README": "docs\n"}, "docs [skip ci]")
    remote.git("checkout", "--quiet", "main")
    auth = {"authorization": f"Bearer {API_TOKEN}"}
    with serve_app(make_settings(remote, sandbox=UNCONFINED), home=tmp_path / "home") as server:
        ids = []
        for sha in (first, second):
            body = pull_request_body(sha, action="synchronize")
            response = httpx.post(
                server.url("/webhooks/github"),
                content=body,
                headers=github_headers(body, event="pull_request"),
            )
            ids.append(response.json()["run_id"])
            if sha == first:
                _wait_for_running_job(server.store.get_run, ids[0])
        skipped = server.wait_for_run(ids[1])
        time.sleep(0.5)  # the supersede decision is taken in the background
        older = server.store.get_run(ids[0])
        httpx.post(server.url(f"/api/v1/runs/{ids[0]}/cancel"), headers=auth)
        server.wait_for_run(ids[0])
    assert skipped.status is Status.SKIPPED
    assert older is not None and older.status is Status.RUNNING


def test_skip_ci_gitlab_merge_request_is_skipped(tmp_path: Path, remote: GitRepo) -> None:
    # GitLab's Merge Request Hook carries the message (object_attributes.last_commit.message).
    payload: dict[str, Any] = orjson.loads(
        (PAYLOADS / "gitlab" / "merge_request.open.json").read_bytes()
    )
    payload["project"]["path_with_namespace"] = "group/sub/app"
    attributes = payload["object_attributes"]
    attributes["last_commit"]["id"], attributes["source_branch"] = remote.head(), "feature"
    attributes["last_commit"]["message"] = "Update the docs\n\n[skip ci]\n"
    headers = {
        "content-type": "application/json",
        "x-gitlab-event": "Merge Request Hook",
        "x-gitlab-token": GL_TOKEN,
    }
    with serve_app(make_settings(remote, sandbox=UNCONFINED), home=tmp_path / "home") as server:
        response = httpx.post(
            server.url("/webhooks/gitlab"), content=orjson.dumps(payload), headers=headers
        )
        assert response.status_code == 202
        run = server.wait_for_run(response.json()["run_id"], timeout_s=5)
    assert (run.status, run.event, run.reason) == (
        Status.SKIPPED,
        EventKind.MERGE_REQUEST,
        "skipped: the head commit's message says [skip ci]",
    )


def _wait_for_running_job(get_run, run_id: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 30
    while True:
        run = get_run(run_id)
        if run is not None and any(j.status is Status.RUNNING for j in run.jobs):
            return
        assert time.monotonic() < deadline, run
        time.sleep(0.05)
