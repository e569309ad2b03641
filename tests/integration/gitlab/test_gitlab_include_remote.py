"""include: remote through HttpRemoteFetcher (conveyor.outbound) against a real HTTP server on
127.0.0.1 (a thread with http.server)."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conveyor.config.gitlab import load_gitlab
from conveyor.errors import ConfigError, IncludeFetchError
from conveyor.outbound.remote import HttpRemoteFetcher

# The fake upstream is on loopback, which remote includes refuse unless allowed.
LOOPBACK = ("127.0.0.1",)
BUILD = b"build:\n  stage: build\n  script: echo build\n"


class Upstream:
    """A file server whose answers the tests choose; `/hang` holds until `release` is set."""

    def __init__(self) -> None:
        self.release = threading.Event()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                """Quiet: the tests read answers, not logs."""

            def do_GET(self) -> None:
                upstream.answer(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def answer(self, request: BaseHTTPRequestHandler) -> None:
        path = request.path.split("?", 1)[0]
        if path == "/ci/build.yml":
            self._send(request, 200, BUILD)
        elif path.startswith("/redirect/"):
            left = int(path.rsplit("/", 1)[1])
            request.send_response(302)
            target = "/ci/build.yml" if left == 0 else f"/redirect/{left - 1}"
            request.send_header("Location", target)
            request.send_header("Content-Length", "0")
            request.end_headers()
        elif path == "/huge":
            request.send_response(200)
            request.end_headers()  # no Content-Length: the client must count
            chunk = b"# padding\n" * 6554  # 64 KiB
            try:
                for _ in range(64):  # 4 MiB if nobody stops reading
                    request.wfile.write(chunk)
            except OSError:
                return  # the client hung up early, as it should
        elif path == "/hang":
            self.release.wait(timeout=30)
        elif path == "/not-yaml":
            self._send(request, 200, b"build: [unclosed\n")
        else:
            self._send(request, 404, b"no such file")

    @staticmethod
    def _send(request: BaseHTTPRequestHandler, status: int, body: bytes) -> None:
        request.send_response(status)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def upstream(monkeypatch: pytest.MonkeyPatch) -> Iterator[Upstream]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)  # loopback must not go through a proxy
    server = Upstream()
    yield server
    server.close()


def write_pipeline(root: Path, include: str) -> Path:
    path = root / ".gitlab-ci.yml"
    path.write_text(f"include:\n  - remote: '{include}'\ntest:\n  script: echo test\n")
    return path


def test_load_gitlab_merges_a_remote_include(tmp_path: Path, upstream: Upstream) -> None:
    pipeline = load_gitlab(
        write_pipeline(tmp_path, upstream.url + "/ci/build.yml"),
        fetch=HttpRemoteFetcher(allow=LOOPBACK),
    )
    assert [job.name for job in pipeline.jobs] == ["build", "test"]


def test_load_gitlab_remote_http_404_names_include_url_and_status(
    tmp_path: Path, upstream: Upstream
) -> None:
    path = write_pipeline(tmp_path, upstream.url + "/missing.yml?private_token=s3cr3t")
    with pytest.raises(ConfigError) as caught:
        load_gitlab(path, fetch=HttpRemoteFetcher(allow=LOOPBACK))
    assert [str(p) for p in caught.value.problems] == [
        f"{path}:2:13: include:remote {upstream.url}/missing.yml: HTTP 404"
    ]


def test_load_gitlab_remote_not_yaml(tmp_path: Path, upstream: Upstream) -> None:
    path = write_pipeline(tmp_path, upstream.url + "/not-yaml")
    with pytest.raises(ConfigError) as caught:
        load_gitlab(path, fetch=HttpRemoteFetcher(allow=LOOPBACK))
    (problem,) = caught.value.problems
    assert str(problem).startswith(f"{path}:2:13: include:remote {upstream.url}/not-yaml: not YAML")


def test_remote_fetcher_follows_five_redirects(upstream: Upstream) -> None:
    assert HttpRemoteFetcher(allow=LOOPBACK).fetch(upstream.url + "/redirect/4") == BUILD


def test_remote_fetcher_refuses_a_sixth_redirect(upstream: Upstream) -> None:
    with pytest.raises(IncludeFetchError, match=r"^more than 5 redirects$"):
        HttpRemoteFetcher(allow=LOOPBACK).fetch(upstream.url + "/redirect/5")


def test_remote_fetcher_stops_reading_past_one_mib(upstream: Upstream) -> None:
    with pytest.raises(IncludeFetchError, match=r"^larger than 1 MiB$"):
        HttpRemoteFetcher(allow=LOOPBACK).fetch(upstream.url + "/huge")


def test_remote_fetcher_times_out(upstream: Upstream) -> None:
    with pytest.raises(IncludeFetchError, match=r"^timeout after 0.3s$"):
        HttpRemoteFetcher(allow=LOOPBACK, timeout_s=0.3).fetch(upstream.url + "/hang")


def test_remote_fetcher_connection_refused_is_a_fetch_error(upstream: Upstream) -> None:
    url = upstream.url + "/ci/build.yml"
    upstream.close()
    with pytest.raises(IncludeFetchError, match=r"^cannot connect \(ConnectError\)$"):
        HttpRemoteFetcher(allow=LOOPBACK).fetch(url)


def test_cli_validate_reports_a_failed_remote_include(tmp_path: Path, upstream: Upstream) -> None:
    write_pipeline(tmp_path, upstream.url + "/missing.yml")
    done = subprocess.run(
        [sys.executable, "-m", "conveyor", "validate"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={
            "PATH": "/usr/bin:/bin",
            "CONVEYOR_HOME": str(tmp_path / ".home"),
            "CONVEYOR_REMOTE_INCLUDE_ALLOW": "127.0.0.1",
        },
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f".gitlab-ci.yml:2:13: include:remote {upstream.url}/missing.yml: HTTP 404"
    )
