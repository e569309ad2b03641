"""Secrets in `include: remote` URLs: a token in the query string or in the user-info of
the URL must not show in any error, warning or `file:line:col` mark of `conveyor validate`
or `conveyor run`, whatever the upstream answers (404 echoing the request, a body that is
not YAML, a file with an error in it, a redirect, nobody listening).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.integration.leaks.scan import conveyor, env_for, find_leaks, plant


def allowed_env(home: Path) -> dict[str, str]:
    """The CLI's environment, the loopback fake allowed (remote includes refuse loopback
    unless allowed: outbound.guard)."""
    return {**env_for(home), "CONVEYOR_REMOTE_INCLUDE_ALLOW": "127.0.0.1"}


class EchoUpstream:
    """Answers by path; every body echoes the request line (query string included)."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                """Quiet: the tests read the product's output, not this server's."""

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                echoed = self.path.encode()
                if path == "/bad-yaml.yml":
                    self._send(200, b"build: [unclosed " + echoed + b"\n")
                elif path == "/bad-job.yml":
                    self._send(200, b"build:\n  scrpt: echo " + echoed + b"\n")
                elif path == "/redirect.yml":
                    self.send_response(302)
                    self.send_header("Location", "/missing.yml?" + self.path.partition("?")[2])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    self._send(404, b"not found: " + echoed)

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()


@pytest.fixture
def upstream() -> Iterator[EchoUpstream]:
    served = EchoUpstream()
    yield served
    served.server.shutdown()
    served.server.server_close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _project(tmp_path: Path, urls: list[str]) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    includes = "".join(f"  - remote: '{url}'\n" for url in urls)
    (project / ".gitlab-ci.yml").write_text(f"include:\n{includes}\njob:\n  script: echo hi\n")
    return project


@pytest.mark.parametrize("path", ["/missing.yml", "/bad-yaml.yml", "/bad-job.yml", "/redirect.yml"])
def test_leaks_gitlab_remote_query_token_never_shown(
    tmp_path: Path, upstream: EchoUpstream, path: str
) -> None:
    token = plant("tokQuery")
    project = _project(tmp_path, [f"{upstream.url}{path}?private_token={token}&ref=main"])
    env = allowed_env(project / ".home")
    validated = conveyor(project, "validate", env=env)
    ran = conveyor(project, "run", env=env)
    assert (validated.returncode, ran.returncode) == (2, 2), validated.stderr
    assert "Traceback" not in validated.stderr + ran.stderr
    assert find_leaks([token], validated.stdout, validated.stderr, ran.stdout, ran.stderr) == []


def test_leaks_gitlab_remote_userinfo_token_never_shown(tmp_path: Path) -> None:
    token = plant("tokUser")
    port = _closed_port()
    urls = [f"http://deploy:{token}@127.0.0.1:{port}/ci.yml", f"http://{token}@127.0.0.1:{port}/"]
    project = _project(tmp_path, urls)
    env = allowed_env(project / ".home")
    validated = conveyor(project, "validate", env=env)
    planned = conveyor(project, "plan", "--json", env=env)
    assert (validated.returncode, planned.returncode) == (2, 2), validated.stderr
    outputs = [validated.stdout, validated.stderr, planned.stdout, planned.stderr]
    assert find_leaks([token], *outputs) == []


def test_leaks_gitlab_remote_unreachable_host_hides_query(tmp_path: Path) -> None:
    token = plant("tokDown")
    project = _project(tmp_path, [f"http://127.0.0.1:{_closed_port()}/ci.yml?token={token}"])
    # Unreachable is an unavailable include: a warning, an error under --strict.
    validated = conveyor(project, "validate", "--strict", env=allowed_env(project / ".home"))
    assert validated.returncode == 2, validated.stderr
    assert find_leaks([token], validated.stdout, validated.stderr) == []
