"""Issue 15, item 4: `include: remote` must not reach conveyor's own host or its network.
A real HTTP server on 127.0.0.1 plays the internal service (it answers a YAML file holding a
planted secret); the attacks go through `conveyor validate` (a real process) and through
HttpRemoteFetcher: loopback, an IPv4-mapped IPv6 loopback, the cloud metadata address, a
redirect from an allowed name to an address the allow-list does not name. Each must be
refused before any byte is read, and no fetched text may appear in an error."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conveyor.errors import IncludeFetchError
from conveyor.outbound.remote import HttpRemoteFetcher

PLANTED = "planted-metadata-secret-8f3a"


class Internal:
    """An internal service: `/creds` answers YAML whose keys and values hold PLANTED;
    `/bounce` redirects to 127.0.0.1. Counts the requests it got."""

    def __init__(self) -> None:
        self.hits = 0
        internal = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                """Quiet."""

            def do_GET(self) -> None:
                internal.hits += 1
                if self.path.startswith("/bounce"):
                    self.send_response(302)
                    self.send_header("Location", f"http://127.0.0.1:{internal.port}/creds")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = f"{PLANTED}:\n  script: {PLANTED}\n  {PLANTED}x: 1\n".encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
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


def _validate(
    tmp_path: Path, url: str, allow: str | None = None
) -> subprocess.CompletedProcess[str]:
    (tmp_path / ".gitlab-ci.yml").write_text(
        f"include:\n  - remote: '{url}'\ntest:\n  script: echo test\n"
    )
    env = {"PATH": "/usr/bin:/bin", "CONVEYOR_HOME": str(tmp_path / ".home")}
    if allow is not None:
        env["CONVEYOR_REMOTE_INCLUDE_ALLOW"] = allow
    return subprocess.run(
        [sys.executable, "-m", "conveyor", "validate"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def test_edges_remote_include_of_loopback_is_refused(tmp_path: Path, internal: Internal) -> None:
    done = _validate(tmp_path, f"http://127.0.0.1:{internal.port}/creds")
    assert done.returncode == 2
    assert "resolves to a loopback address" in done.stderr
    assert PLANTED not in done.stdout + done.stderr
    assert internal.hits == 0


def test_edges_remote_include_by_name_localhost_is_refused(
    tmp_path: Path, internal: Internal
) -> None:
    done = _validate(tmp_path, f"http://localhost:{internal.port}/creds")
    assert done.returncode == 2
    assert "loopback address" in done.stderr
    assert internal.hits == 0


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://[::ffff:127.0.0.1]:{port}/creds", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[fe80::1]/x.yml", "link-local"),
        ("http://10.1.2.3/x.yml", "private"),
        ("http://0.0.0.0:{port}/creds", "unspecified"),
        ("http://[::1]:{port}/creds", "loopback"),
        ("http://224.0.0.1/x.yml", "multicast"),
        ("http://2130706433:{port}/creds", "loopback"),
    ],
)
def test_edges_remote_fetcher_refuses_internal_addresses(
    internal: Internal, url: str, kind: str
) -> None:
    with pytest.raises(IncludeFetchError, match=f"^resolves to a {kind} address"):
        HttpRemoteFetcher(timeout_s=5).fetch(url.format(port=internal.port))
    assert internal.hits == 0


def test_edges_remote_redirect_to_an_address_not_allowed_is_refused(internal: Internal) -> None:
    # "localhost" is allowed by name; the redirect goes to 127.0.0.1, which no entry names.
    fetcher = HttpRemoteFetcher(allow=("localhost",), timeout_s=5)
    with pytest.raises(IncludeFetchError, match=r"^resolves to a loopback address"):
        fetcher.fetch(f"http://localhost:{internal.port}/bounce")
    assert internal.hits == 1  # the allowed first hop only


def test_edges_remote_allow_list_opts_in(internal: Internal) -> None:
    fetcher = HttpRemoteFetcher(allow=("127.0.0.0/8",), timeout_s=5)
    assert PLANTED.encode() in fetcher.fetch(f"http://127.0.0.1:{internal.port}/creds")


def test_edges_remote_allowed_file_text_never_in_errors(tmp_path: Path, internal: Internal) -> None:
    done = _validate(tmp_path, f"http://127.0.0.1:{internal.port}/creds", allow="127.0.0.1")
    assert done.returncode == 2
    assert f"http://127.0.0.1:{internal.port}/creds:" in done.stderr
    assert PLANTED not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr
