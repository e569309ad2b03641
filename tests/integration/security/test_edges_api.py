"""Issue 15, item 5: the API's and the webhooks' edges, attacked against the real app on
127.0.0.1 (uvicorn in a thread, SQLite in tmp_path, a real git remote): revision syntax in
refs, loader variables, non-ASCII tokens, huge offsets, a server secret as a variable, the
modes of conveyor's home. Each attack must fail safely: a 4xx in the error envelope, never
a 500, and nothing stored in clear."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.fakes.git_repos import GitRepo
from tests.integration.server.conftest import (
    API_TOKEN,
    GH_SECRET,
    Served,
    github_headers,
    github_push_body,
    make_settings,
    serve_app,
)
from tests.integration.server.test_change_triggers import pull_request_body

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
BAD_REFS = [
    "main^{tree}",
    "main:.conveyor.yml",
    "main\x00x",
    "main~1",
    "a..b",
    "feature/@{-1}",
    "-delete",
    "x\nInjected: yes",
    "a" * 256,
]


@pytest.fixture
def server(tmp_path: Path, remote: GitRepo) -> Iterator[Served]:
    with serve_app(make_settings(remote), home=tmp_path / "home") as served:
        yield served


def _envelope(response: httpx.Response) -> tuple[int, str]:
    body = response.json()
    assert set(body["error"]) == {"code", "message", "request_id"}, body
    return response.status_code, body["error"]["code"]


@pytest.mark.parametrize("ref", BAD_REFS)
def test_edges_api_refuses_a_ref_git_would_read_as_a_revision(server: Served, ref: str) -> None:
    body = {"repo": "acme/app", "ref": ref}
    response = httpx.post(server.url("/api/v1/runs"), json=body, headers=AUTH)
    assert response.status_code in (422,)
    code = response.json()["error"]["code"]
    assert code in ("invalid_ref", "invalid_request")
    assert server.store.list_runs(limit=10, offset=0) == []


@pytest.mark.parametrize("ref", BAD_REFS)
def test_edges_webhook_refuses_a_pushed_ref_that_is_no_branch_name(
    server: Served, remote: GitRepo, ref: str
) -> None:
    body = github_push_body(remote.head(), ref="refs/heads/" + ref)
    response = httpx.post(
        server.url("/webhooks/github"), content=body, headers=github_headers(body)
    )
    assert _envelope(response) == (422, "invalid_ref")
    assert server.store.list_runs(limit=10, offset=0) == []


@pytest.mark.parametrize("name", ["BASH_ENV", "ENV", "LD_PRELOAD", "PATH", "SHELLOPTS", "PS4"])
def test_edges_api_refuses_a_variable_that_changes_how_the_shell_starts(
    server: Served, name: str
) -> None:
    body = {"repo": "acme/app", "ref": "main", "variables": {name: "./evil.sh"}}
    response = httpx.post(server.url("/api/v1/runs"), json=body, headers=AUTH)
    assert _envelope(response) == (422, "refused_variable")
    assert name in response.json()["error"]["message"]
    assert server.store.list_runs(limit=10, offset=0) == []


def test_edges_api_stores_a_variable_equal_to_a_server_secret_masked(server: Served) -> None:
    body = {"repo": "acme/app", "ref": "main", "variables": {"LEAK": GH_SECRET}}
    response = httpx.post(server.url("/api/v1/runs"), json=body, headers=AUTH)
    assert response.status_code == 202, response.text
    run = server.wait_for_run(response.json()["run_id"])
    assert run.trigger["variables"] == {"LEAK": "[MASKED]"}
    database = (server.home / "conveyor.db").read_bytes()
    for suffix in ("-wal", ""):
        path = server.home / f"conveyor.db{suffix}"
        if path.exists():
            database += path.read_bytes()
    assert GH_SECRET.encode() not in database


@pytest.mark.parametrize(
    "header", ["Bearer tökén", "Bearer \u00ff\u00fe", "Bäarer x", "Bearer " + "é" * 300]
)
def test_edges_non_ascii_authorization_is_a_401(server: Served, header: str) -> None:
    headers = {"Authorization": header.encode("latin-1")}
    for method, path in [
        ("GET", "/api/v1/runs"),
        ("POST", "/api/v1/runs"),
        ("GET", "/api/v1/pipelines"),
    ]:
        response = httpx.request(method, server.url(path), headers=headers, json={})
        assert _envelope(response) == (401, "unauthorized"), (method, path)


@pytest.mark.parametrize(
    "query",
    [
        "offset=99999999999999999999999",
        "offset=-1",
        "limit=0",
        "limit=99999999999999999999",
        "limit=abc",
        "offset=1e3",
        "status=bogus",
    ],
)
def test_edges_malformed_list_parameters_are_a_422(server: Served, query: str) -> None:
    response = httpx.get(server.url(f"/api/v1/runs?{query}"), headers=AUTH)
    assert _envelope(response) == (422, "invalid_request")


def test_edges_huge_last_event_id_is_ignored_not_a_500(server: Served) -> None:
    body = {"repo": "acme/app", "ref": "main"}
    run_id = httpx.post(server.url("/api/v1/runs"), json=body, headers=AUTH).json()["run_id"]
    server.wait_for_run(run_id)
    headers = {**AUTH, "Last-Event-ID": "9" * 5000}
    response = httpx.get(
        server.url(f"/api/v1/runs/{run_id}/jobs/build/log?follow=1"), headers=headers, timeout=10
    )
    assert response.status_code == 200


def test_edges_home_is_private(server: Served) -> None:
    assert stat.S_IMODE(server.home.stat().st_mode) == 0o700
    assert stat.S_IMODE((server.home / "conveyor.db").stat().st_mode) == 0o600
    body = {"repo": "acme/app", "ref": "main"}
    run_id = httpx.post(server.url("/api/v1/runs"), json=body, headers=AUTH).json()["run_id"]
    server.wait_for_run(run_id)
    logs = list((server.home / "runs" / run_id).rglob("*.jsonl"))
    assert logs
    assert {stat.S_IMODE(path.stat().st_mode) for path in logs} == {0o600}


def test_edges_replayed_signed_body_under_a_new_delivery_id_is_a_duplicate(
    server: Served, remote: GitRepo
) -> None:
    body = github_push_body(remote.head())
    url = server.url("/webhooks/github")
    first = httpx.post(url, content=body, headers=github_headers(body, delivery="d-1"))
    assert first.status_code == 202
    run_id = first.json()["run_id"]
    for delivery in ("d-2", "d-3", None):
        again = httpx.post(url, content=body, headers=github_headers(body, delivery=delivery))
        assert (again.status_code, again.json()) == (200, {"run_id": run_id, "duplicate": True})
    assert [r.run_id for r in server.store.list_runs(limit=10, offset=0)] == [run_id]


@pytest.mark.parametrize("side", ["head", "base"])
def test_edges_pull_request_with_a_revision_as_branch_is_refused(
    server: Served, remote: GitRepo, side: str
) -> None:
    payload = orjson.loads(pull_request_body(remote.head()))
    payload["pull_request"][side]["ref"] = "main:.conveyor.yml"
    body = orjson.dumps(payload)
    response = httpx.post(
        server.url("/webhooks/github"),
        content=body,
        headers=github_headers(body, event="pull_request"),
    )
    assert _envelope(response) == (422, "invalid_ref")
    assert server.store.list_runs(limit=10, offset=0) == []
