"""Issue 15, item 4 on the server: a pushed `.gitlab-ci.yml` whose `include: remote` names
conveyor's own host fails its run with a reason that says where and why, and the internal
service is never asked; with `server.remote_include_allow` naming it, the same push runs."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from conveyor.model import Status
from conveyor.settings import parse_settings
from tests.fakes.git_repos import GitRepo
from tests.integration.server.conftest import (
    ENV,
    github_headers,
    github_push_body,
    serve_app,
    settings_text,
)

INCLUDED = b"included:\n  script: echo from-the-include\n"


class Internal:
    def __init__(self) -> None:
        self.hits = 0
        internal = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                """Quiet."""

            def do_GET(self) -> None:
                internal.hits += 1
                self.send_response(200)
                self.send_header("Content-Length", str(len(INCLUDED)))
                self.end_headers()
                self.wfile.write(INCLUDED)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/ci.yml"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()


@pytest.fixture
def internal(monkeypatch: pytest.MonkeyPatch) -> Iterator[Internal]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    served = Internal()
    yield served
    served.server.shutdown()
    served.server.server_close()


def _push_and_wait(tmp_path: Path, internal: Internal, **server: object) -> tuple[Status, str]:
    pipeline = f"include:\n  - remote: '{internal.url}'\ntest:\n  script: echo test\n"
    remote = GitRepo.create(tmp_path / "remote", {".gitlab-ci.yml": pipeline})
    settings = parse_settings(settings_text(remote.clone_url, remote.clone_url, **server), ENV)
    with serve_app(settings, home=tmp_path / "home") as served:
        body = github_push_body(remote.head())
        answer = httpx.post(
            served.url("/webhooks/github"), content=body, headers=github_headers(body)
        )
        assert answer.status_code == 202, answer.text
        run = served.wait_for_run(answer.json()["run_id"])
    return run.status, run.reason or ""


def test_edges_server_run_refuses_a_loopback_include(tmp_path: Path, internal: Internal) -> None:
    status, reason = _push_and_wait(tmp_path, internal)
    assert status is Status.FAILED
    assert f"include:remote {internal.url}: resolves to a loopback address" in reason
    assert internal.hits == 0


def test_edges_server_allow_list_lets_the_include_through(
    tmp_path: Path, internal: Internal
) -> None:
    status, reason = _push_and_wait(tmp_path, internal, remote_include_allow=["127.0.0.1"])
    assert (status, reason) == (Status.SUCCESS, "")
    assert internal.hits == 1
