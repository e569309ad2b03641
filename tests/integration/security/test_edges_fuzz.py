"""Hypothesis against the real app on 127.0.0.1: whatever a client puts in the query, the
path, the headers or the body of the API's and the webhooks' routes, the answer is never a
500, and every error is the one envelope."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fakes.git_repos import GitRepo
from tests.integration.server.conftest import (
    API_TOKEN,
    PIPELINE,
    Served,
    make_settings,
    serve_app,
)

AUTH = f"Bearer {API_TOKEN}"
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# Header values as HTTP carries them: latin-1, no CR/LF/NUL, no space around them.
_HEADER_TEXT = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f"),
    max_size=80,
).map(lambda value: value.strip(" \t"))
_QUERY_VALUE = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.text(max_size=30),
    st.sampled_from(["1e3", "NaN", "-0", "0x10", "", "٣", "true", "99999999999999999999999"]),
)
_QUERY_NAMES = st.sampled_from(["limit", "offset", "status", "repo", "ref", "follow", "x"])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("fuzz")
    remote = GitRepo.create(root / "remote", {".conveyor.yml": PIPELINE})
    with serve_app(make_settings(remote), home=root / "home") as served:
        yield served


def _assert_safe(response: httpx.Response) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if response.status_code >= 400:
        error = response.json()["error"]
        assert set(error) == {"code", "message", "request_id"}
        assert "Traceback" not in error["message"]


@FUZZ
@given(st.dictionaries(_QUERY_NAMES, _QUERY_VALUE, max_size=4))
def test_edges_fuzz_list_runs_query(server: Served, query: dict[str, str]) -> None:
    response = httpx.get(server.url("/api/v1/runs"), params=query, headers={"Authorization": AUTH})
    _assert_safe(response)


@FUZZ
@given(_HEADER_TEXT, st.sampled_from(["/api/v1/runs", "/api/v1/pipelines", "/metrics"]))
def test_edges_fuzz_authorization_header(server: Served, header: str, path: str) -> None:
    response = httpx.get(server.url(path), headers={"Authorization": header.encode("latin-1")})
    _assert_safe(response)


@FUZZ
@given(st.text(max_size=40), st.text(max_size=40), _HEADER_TEXT)
def test_edges_fuzz_run_and_log_paths(server: Served, run_id: str, job: str, last: str) -> None:
    headers = {"Authorization": AUTH, "Last-Event-ID": last.encode("latin-1")}
    for path in (
        f"/api/v1/runs/{quote(run_id, safe='')}",
        f"/api/v1/runs/{quote(run_id, safe='')}/jobs/{quote(job, safe='')}/log",
    ):
        _assert_safe(httpx.get(server.url(path), headers=headers))
    play = f"/api/v1/runs/{quote(run_id, safe='')}/jobs/{quote(job, safe='')}/play"
    _assert_safe(httpx.post(server.url(play), headers=headers))
    schedule = f"/api/v1/schedules/{quote(run_id, safe='')}/run"
    _assert_safe(httpx.post(server.url(schedule), headers=headers))


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=8,
)


@FUZZ
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "repo": st.one_of(st.just("acme/app"), _JSON),
            "ref": st.one_of(st.text(max_size=300), _JSON),
            "sha": st.one_of(st.text(max_size=70), _JSON),
            "variables": st.one_of(
                st.dictionaries(st.text(max_size=20), st.text(max_size=20)), _JSON
            ),
            "event": st.one_of(st.sampled_from(["push", "tag", "manual", "x"]), _JSON),
        },
    )
)
def test_edges_fuzz_trigger_body(server: Served, body: dict[str, object]) -> None:
    if body.get("repo") == "acme/app" and isinstance(body.get("ref"), str) and "sha" not in body:
        body["sha"] = "0" * 40  # never asks git for a ref: no fetch per example
    response = httpx.post(
        server.url("/api/v1/runs"), json=body, headers={"Authorization": AUTH}, timeout=30
    )
    _assert_safe(response)


@FUZZ
@given(
    st.binary(max_size=300),
    st.dictionaries(
        st.sampled_from(
            [
                "content-type",
                "x-github-event",
                "x-hub-signature-256",
                "x-github-delivery",
                "x-gitlab-token",
                "x-gitlab-event",
            ]
        ),
        _HEADER_TEXT,
    ),
)
def test_edges_fuzz_webhook(server: Served, body: bytes, headers: dict[str, str]) -> None:
    raw = {name: value.encode("latin-1") for name, value in headers.items()}
    for path in (
        "/webhooks/github",
        "/webhooks/gitlab",
        "/webhooks/monitor/github",
        "/webhooks/monitor/gitlab",
        "/webhooks/monitor/jenkins",
    ):
        _assert_safe(httpx.post(server.url(path), content=body, headers=raw))
