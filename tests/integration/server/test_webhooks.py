"""Webhook deliveries against a real server, real store and real git remotes."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import httpx
import orjson

from conveyor.model import EventKind, Status
from conveyor.server.webhook_parse import github_signature
from tests.fakes.git_repos import GitRepo
from tests.integration.server.conftest import (
    GH_SECRET,
    GL_TOKEN,
    github_headers,
    github_push_body,
    make_settings,
    serve_app,
)


def _error(response: httpx.Response) -> dict[str, str]:
    body = response.json()
    assert set(body) == {"error"}
    assert response.headers["x-request-id"] == body["error"]["request_id"]
    return dict(body["error"])


def test_webhook_signed_push_queues_a_run_that_succeeds(tmp_path: Path, remote: GitRepo) -> None:
    sha = remote.head()
    with serve_app(make_settings(remote), home=tmp_path / "home") as server:
        body = github_push_body(sha)
        response = httpx.post(
            server.url("/webhooks/github"), content=body, headers=github_headers(body)
        )
        assert response.status_code == 202
        run = server.wait_for_run(response.json()["run_id"])
    assert (run.status, run.sha, run.ref, run.event) == (
        Status.SUCCESS,
        sha,
        "main",
        EventKind.PUSH,
    )
    assert [j.name for j in run.jobs] == ["build"]
    assert not (tmp_path / "home" / "worktrees" / run.run_id).exists()


def test_webhook_unsigned_and_wrongly_signed_are_401(tmp_path: Path, remote: GitRepo) -> None:
    body = github_push_body(remote.head())
    with serve_app(make_settings(remote), home=tmp_path / "home") as server:
        unsigned = httpx.post(
            server.url("/webhooks/github"),
            content=body,
            headers={"content-type": "application/json", "x-github-event": "push"},
        )
        wrong = httpx.post(
            server.url("/webhooks/github"),
            content=body,
            headers={**github_headers(body), "x-hub-signature-256": github_signature("nope", body)},
        )
        runs = server.store.list_runs()
    assert (unsigned.status_code, wrong.status_code) == (401, 401)
    assert _error(unsigned)["code"] == "bad_signature"
    assert GH_SECRET not in unsigned.text + wrong.text
    assert runs == []


def test_webhook_form_encoded_delivery_is_accepted(tmp_path: Path, remote: GitRepo) -> None:
    body = urlencode({"payload": github_push_body(remote.head()).decode()}).encode()
    headers = {**github_headers(body), "content-type": "application/x-www-form-urlencoded"}
    with serve_app(make_settings(remote), home=tmp_path / "home") as server:
        response = httpx.post(server.url("/webhooks/github"), content=body, headers=headers)
        assert response.status_code == 202
        assert server.wait_for_run(response.json()["run_id"]).status is Status.SUCCESS


def test_webhook_oversized_body_is_413_with_and_without_length(
    tmp_path: Path, remote: GitRepo
) -> None:
    body = github_push_body(remote.head(), padding="x" * 5000)
    with serve_app(make_settings(remote, max_body_bytes=2048), home=tmp_path / "home") as server:
        declared = httpx.post(
            server.url("/webhooks/github"), content=body, headers=github_headers(body)
        )
        chunked = httpx.post(
            server.url("/webhooks/github"),
            content=iter([body[:1500], body[1500:]]),
            headers=github_headers(body),
        )
        runs = server.store.list_runs()
    assert (declared.status_code, chunked.status_code) == (413, 413)
    assert _error(declared)["code"] == _error(chunked)["code"] == "payload_too_large"
    assert runs == []


def test_webhook_malformed_json_is_400(tmp_path: Path, remote: GitRepo) -> None:
    body = b'{"ref": "refs/heads/main", '
    with serve_app(make_settings(remote), home=tmp_path / "home") as server:
        response = httpx.post(
            server.url("/webhooks/github"), content=body, headers=github_headers(body)
        )
    assert response.status_code == 400
    assert _error(response)["code"] == "malformed_payload"


def test_webhook_ping_is_200(tmp_path: Path, remote: GitRepo) -> None:
    body = orjson.dumps(
        {"zen": "Keep it simple.", "hook_id": 1, "repository": {"full_name": "acme/app"}}
    )
    with serve_app(make_settings(remote), home=tmp_path / "home") as server:
        response = httpx.post(
            server.url("/webhooks/github"), content=body, headers=github_headers(body, event="ping")
        )
    assert (response.status_code, response.json()["status"]) == (200, "ignored")


def test_webhook_tag_push_runs_a_tag_event(tmp_path: Path, remote: GitRepo) -> None:
    sha = remote.tag("v1.0.0")
    body = github_push_body(sha, ref="refs/tags/v1.0.0")
    with serve_app(make_settings(remote), home=tmp_path / "home") as server:
        response = httpx.post(
            server.url("/webhooks/github"), content=body, headers=github_headers(body)
        )
        run = server.wait_for_run(response.json()["run_id"])
    assert (run.event, run.ref, run.status) == (EventKind.TAG, "v1.0.0", Status.SUCCESS)


def test_webhook_branch_deletion_is_acknowledged_and_ignored(
    tmp_path: Path, remote: GitRepo
) -> None:
    body = github_push_body("0" * 40, before=remote.head(), deleted=True)
    with serve_app(make_settings(remote), home=tmp_path / "home") as server:
        response = httpx.post(
            server.url("/webhooks/github"), content=body, headers=github_headers(body)
        )
        runs = server.store.list_runs()
    assert (response.status_code, response.json()["status"]) == (202, "ignored")
    assert runs == []


def test_webhook_other_event_is_202_ignored(tmp_path: Path, remote: GitRepo) -> None:
    body = orjson.dumps({"action": "opened", "repository": {"full_name": "acme/app"}})
    with serve_app(make_settings(remote), home=tmp_path / "home") as server:
        response = httpx.post(
            server.url("/webhooks/github"),
            content=body,
            headers=github_headers(body, event="issues"),
        )
    assert (response.status_code, response.json()["status"]) == (202, "ignored")


def test_webhook_unknown_repo_is_404(tmp_path: Path, remote: GitRepo) -> None:
    body = github_push_body(remote.head(), repository={"full_name": "someone/else"})
    with serve_app(make_settings(remote), home=tmp_path / "home") as server:
        response = httpx.post(
            server.url("/webhooks/github"), content=body, headers=github_headers(body)
        )
    assert response.status_code == 404
    assert _error(response)["code"] == "unknown_repo"


def test_webhook_duplicate_delivery_across_restart_triggers_nothing(
    tmp_path: Path, remote: GitRepo
) -> None:
    body = github_push_body(remote.head())
    headers = github_headers(body, delivery="72d3162e-cc78-11e3-81ab-4c9367dc0958")
    settings = make_settings(remote)
    with serve_app(settings, home=tmp_path / "home") as server:
        first = httpx.post(server.url("/webhooks/github"), content=body, headers=headers)
        again = httpx.post(server.url("/webhooks/github"), content=body, headers=headers)
        server.wait_for_run(first.json()["run_id"])
    with serve_app(settings, home=tmp_path / "home") as server:
        after_restart = httpx.post(server.url("/webhooks/github"), content=body, headers=headers)
        runs = server.store.list_runs()
    assert (first.status_code, again.status_code, after_restart.status_code) == (202, 200, 200)
    assert first.json()["run_id"] == again.json()["run_id"] == after_restart.json()["run_id"]
    assert len(runs) == 1


def test_webhook_gitlab_push_and_tag_hooks(tmp_path: Path, remote: GitRepo) -> None:
    sha = remote.head()
    push = {
        "object_kind": "push",
        "before": "0" * 40,
        "after": sha,
        "ref": "refs/heads/main",
        "checkout_sha": sha,
        "project": {"path_with_namespace": "group/sub/app", "default_branch": "main"},
        "commits": [],
    }
    tag = {**push, "object_kind": "tag_push", "ref": "refs/tags/v9"}
    with serve_app(make_settings(remote), home=tmp_path / "home") as server:
        answers = [
            httpx.post(
                server.url("/webhooks/gitlab"),
                json=payload,
                headers={"x-gitlab-token": token, "x-gitlab-event": kind},
            )
            for payload, token, kind in (
                (push, GL_TOKEN, "Push Hook"),
                (tag, GL_TOKEN, "Tag Push Hook"),
                (push, "wrong-token", "Push Hook"),
            )
        ]
        runs = [server.wait_for_run(a.json()["run_id"]) for a in answers[:2]]
    assert [a.status_code for a in answers] == [202, 202, 401]
    assert [(r.event, r.ref, r.status) for r in runs] == [
        (EventKind.PUSH, "main", Status.SUCCESS),
        (EventKind.TAG, "v9", Status.SUCCESS),
    ]


def test_webhook_unfetchable_sha_fails_the_run_not_the_server(
    tmp_path: Path, remote: GitRepo
) -> None:
    body = github_push_body("f" * 40)
    with serve_app(make_settings(remote), home=tmp_path / "home") as server:
        response = httpx.post(
            server.url("/webhooks/github"), content=body, headers=github_headers(body)
        )
        run = server.wait_for_run(response.json()["run_id"])
        ready = httpx.get(server.url("/readyz"))
    assert run.status is Status.FAILED
    assert run.reason is not None
    assert "commit ffffffff" in run.reason
    assert ready.status_code == 200


def test_webhook_push_diff_feeds_changes_rules(tmp_path: Path, remote: GitRepo) -> None:
    pipeline = """\
name: demo
jobs:
  docs:
    run: echo docs
    when:
      changes: ["docs/**"]
  app:
    run: echo app
    when:
      changes: ["src/**"]
"""
    before = remote.commit({".conveyor.yml": pipeline}, "pipeline")
    after = remote.commit({"docs/index.md": "# hi\n"}, "docs only")
    body = github_push_body(after, before=before)
    with serve_app(make_settings(remote), home=tmp_path / "home") as server:
        response = httpx.post(
            server.url("/webhooks/github"), content=body, headers=github_headers(body)
        )
        run = server.wait_for_run(response.json()["run_id"])
    assert run.status is Status.SUCCESS
    assert [j.name for j in run.jobs] == ["docs"]


def test_webhook_invalid_pipeline_fails_the_run_with_its_problems(
    tmp_path: Path, remote: GitRepo
) -> None:
    sha = remote.commit(
        {".conveyor.yml": "name: demo\njobs:\n  build:\n    needs: [nope]\n    run: x\n"}
    )
    body = github_push_body(sha)
    with serve_app(make_settings(remote), home=tmp_path / "home") as server:
        response = httpx.post(
            server.url("/webhooks/github"), content=body, headers=github_headers(body)
        )
        run = server.wait_for_run(response.json()["run_id"])
    assert run.status is Status.FAILED
    assert run.reason is not None
    assert run.reason.startswith(".conveyor.yml:4:")
    assert "nope" in run.reason


def test_webhook_pipeline_cannot_read_conveyors_own_secrets(
    tmp_path: Path, remote: GitRepo
) -> None:
    out = tmp_path / "seen.txt"
    pipeline = (
        "name: demo\njobs:\n  peek:\n    secrets: [GH_HOOK_SECRET]\n"
        f'    run: echo "${{GH_HOOK_SECRET:-unset}}" > {out}\n'
    )
    sha = remote.commit({".conveyor.yml": pipeline})
    body = github_push_body(sha)
    # `none`: the job writes to tmp_path (the refusal holds without a sandbox too).
    with serve_app(make_settings(remote, sandbox="none"), home=tmp_path / "home") as server:
        response = httpx.post(
            server.url("/webhooks/github"), content=body, headers=github_headers(body)
        )
        server.wait_for_run(response.json()["run_id"])
    assert out.read_text().strip() == "unset"
