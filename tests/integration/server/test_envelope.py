"""The one error envelope on every framework error, request ids, the access event, health."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, MutableMapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from structlog.testing import capture_logs

from tests.fakes.git_repos import GitRepo
from tests.integration.server.conftest import (
    API_TOKEN,
    GH_SECRET,
    Served,
    make_settings,
    serve_app,
)


def _wait_for(
    logs: Sequence[MutableMapping[str, Any]], event: str
) -> list[MutableMapping[str, Any]]:
    """Events named `event`; the access event is logged just after the answer is sent."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        found = [e for e in logs if e["event"] == event]
        if found:
            return found
        time.sleep(0.01)
    return []


def _add_test_routes(app: FastAPI) -> None:
    async def boom() -> None:
        raise RuntimeError("internal detail " + GH_SECRET)

    async def slow() -> dict[str, str]:
        await asyncio.sleep(5)
        return {"late": "yes"}

    async def typed(n: int) -> dict[str, int]:
        return {"n": n}

    app.add_api_route("/test/boom", boom)
    app.add_api_route("/test/slow", slow)
    app.add_api_route("/test/typed", typed)


@pytest.fixture
def server(tmp_path: Path, remote: GitRepo) -> Iterator[Served]:
    settings = make_settings(remote, request_timeout=0.5)
    with serve_app(settings, home=tmp_path / "home", prepare=_add_test_routes) as served:
        yield served


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/nowhere", 404, "not_found"),
        ("GET", "/webhooks/github", 405, "method_not_allowed"),
        ("GET", "/test/typed?n=abc", 422, "invalid_request"),
        ("GET", "/test/boom", 500, "internal_error"),
        ("GET", "/test/slow", 503, "request_timeout"),
    ],
)
def test_envelope_on_framework_errors(
    server: Served, method: str, path: str, status: int, code: str
) -> None:
    response = httpx.request(method, server.url(path))
    body = response.json()
    assert (response.status_code, body["error"]["code"]) == (status, code)
    assert set(body["error"]) == {"code", "message", "request_id"}
    assert body["error"]["request_id"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text
    assert GH_SECRET not in response.text


def test_envelope_500_is_logged_with_exc_info(server: Served) -> None:
    with capture_logs() as logs:
        httpx.get(server.url("/test/boom"))
        errors = _wait_for(logs, "http.unhandled_error")
    assert len(errors) == 1
    assert errors[0]["exc_info"] is True


def test_request_id_is_echoed_or_generated(server: Served) -> None:
    given = httpx.get(server.url("/healthz"), headers={"x-request-id": "trace-123"})
    made = httpx.get(server.url("/healthz"))
    assert given.headers["x-request-id"] == "trace-123"
    assert len(made.headers["x-request-id"]) == 32


def test_access_event_once_per_request(server: Served) -> None:
    with capture_logs() as logs:
        httpx.get(server.url("/healthz"), headers={"x-request-id": "acc-1"})
        access = _wait_for(logs, "http.request")
    assert len(access) == 1
    assert {k: access[0][k] for k in ("method", "path", "status")} == {
        "method": "GET",
        "path": "/healthz",
        "status": 200,
    }
    assert access[0]["duration_ms"] >= 0


def test_health_ready_and_openapi(server: Served) -> None:
    assert httpx.get(server.url("/healthz")).json() == {"status": "ok"}
    assert httpx.get(server.url("/readyz")).json() == {"status": "ready"}
    paths = httpx.get(server.url("/openapi.json")).json()["paths"]
    assert {"/webhooks/github", "/webhooks/gitlab", "/healthz"} <= set(paths)


def test_no_secret_in_any_log_line(tmp_path: Path, remote: GitRepo) -> None:
    settings = make_settings(remote)
    with capture_logs() as logs, serve_app(settings, home=tmp_path / "home") as server:
        httpx.post(
            server.url("/webhooks/github"), content=b"{}", headers={"x-github-event": "push"}
        )
        httpx.get(server.url("/nowhere"), headers={"authorization": f"Bearer {API_TOKEN}"})
    text = repr(logs)
    assert logs
    assert GH_SECRET not in text
    assert API_TOKEN not in text
