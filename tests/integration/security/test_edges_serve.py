"""Issue 15, item 5, against a real `conveyor serve` process: a connection that sends half a
request line (or nothing) is closed after `server.request_head_timeout`, while a complete
request on another connection is still answered."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx

from tests.fakes.git_repos import GitRepo
from tests.integration.server.conftest import PIPELINE, settings_text
from tests.integration.server.test_serve_lifecycle import _serve_process


def _closed_within(sock: socket.socket, timeout_s: float) -> float:
    """Seconds until the server closed `sock` (recv answers b""), failing after timeout_s."""
    started = time.monotonic()
    sock.settimeout(timeout_s)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        raise AssertionError(f"the server still holds the connection after {timeout_s}s") from None
    except ConnectionResetError:
        pass
    return time.monotonic() - started


def test_edges_serve_closes_a_connection_with_an_incomplete_request_head(tmp_path: Path) -> None:
    remote = GitRepo.create(tmp_path / "remote", {".conveyor.yml": PIPELINE})
    config = tmp_path / "conveyor.toml"
    config.write_text(settings_text(remote.clone_url, remote.clone_url, request_head_timeout=1))
    with _serve_process(config, tmp_path / "home") as server:
        port = int(str(server.wait_for_event("server.listening")["port"]))
        half = socket.create_connection(("127.0.0.1", port), timeout=5)
        idle = socket.create_connection(("127.0.0.1", port), timeout=5)
        with half, idle:
            half.sendall(b"GET /healthz HT")  # half a request line, then nothing
            assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
            assert _closed_within(half, timeout_s=8) < 8
            assert _closed_within(idle, timeout_s=8) < 8
