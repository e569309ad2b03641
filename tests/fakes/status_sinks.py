"""A fake GitHub + GitLab + Slack on loopback that records every request it receives.

Speaks `POST /repos/{owner}/{repo}/statuses/{sha}` (GitHub; 201, 401 without a token, 422 on
a bad state), `POST /api/v4/projects/:id/statuses/:sha` (GitLab; 201, 401 without
PRIVATE-TOKEN, 400 on a bad state) and a Slack incoming webhook (`POST /services/…`; 200
`ok`, 400 `no_text`). Each sink can be scripted to answer 500, 429 with Retry-After, or to
hang, for its next requests. A real HTTP server in a thread: usable from sync and async tests.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

__all__ = ["Answer", "Kind", "Recorded", "StatusSinks", "hang", "open_status_sinks"]

Kind = Literal["github", "gitlab", "slack"]
GITHUB_STATES = {"pending", "success", "failure", "error"}
GITLAB_STATES = {"pending", "running", "success", "failed", "canceled", "skipped"}
SLACK_PATH = "/services/T0FAKE/B0FAKE/fakeslackwebhooksecret0123"
_GITHUB = re.compile(r"^/repos/([^/]+)/([^/]+)/statuses/([^/]+)$")
_GITLAB = re.compile(r"^/api/v4/projects/([^/]+)/statuses/([^/]+)$")


@dataclass(frozen=True)
class Answer:
    """A scripted answer. `hang_s` > 0: wait that long (or until the sinks stop) first."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    hang_s: float = 0.0


def hang(seconds: float = 30.0) -> Answer:
    return Answer(200, body=b"late", hang_s=seconds)


@dataclass(frozen=True)
class Recorded:
    kind: str
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class StatusSinks:
    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._scripts: dict[str, list[Answer]] = {"github": [], "gitlab": [], "slack": []}
        self._requests: list[Recorded] = []
        self._released = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def github_api_url(self) -> str:
        return self.url

    @property
    def gitlab_api_url(self) -> str:
        return f"{self.url}/api/v4"

    @property
    def slack_webhook_url(self) -> str:
        return f"{self.url}{SLACK_PATH}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def script(self, kind: Kind, *answers: Answer) -> None:
        """The next answers `kind` gives, in order; afterwards it answers normally."""
        with self._lock:
            self._scripts[kind].extend(answers)

    def requests(self, kind: str | None = None) -> list[Recorded]:
        with self._lock:
            return [r for r in self._requests if kind is None or r.kind == kind]

    def wait_for(
        self, count: int, kind: str | None = None, timeout_s: float = 10.0
    ) -> list[Recorded]:
        """Block until `count` requests of `kind` arrived; AssertionError on timeout."""
        with self._lock:
            ok = self._lock.wait_for(
                lambda: len([r for r in self._requests if kind is None or r.kind == kind]) >= count,
                timeout=timeout_s,
            )
            found = [r for r in self._requests if kind is None or r.kind == kind]
        if not ok:
            raise AssertionError(f"expected {count} {kind or 'any'} requests, got {len(found)}")
        return found

    # -- request handling (runs in the server's threads)

    def _record_and_answer(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> Answer:
        kind = "github" if _GITHUB.match(path) else "gitlab" if _GITLAB.match(path) else ""
        if path == SLACK_PATH:
            kind = "slack"
        with self._lock:
            self._requests.append(Recorded(kind or "unknown", method, path, headers, body))
            self._lock.notify_all()
            scripted = self._scripts[kind].pop(0) if kind and self._scripts[kind] else None
        if scripted is not None:
            return scripted
        if method != "POST" or not kind:
            return Answer(404, body=b'{"message": "Not Found"}')
        return _answer_normally(kind, headers, body)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        sinks = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                answer = sinks._record_and_answer(self.command, self.path, headers, body)
                if answer.hang_s > 0 and sinks._released.wait(answer.hang_s):
                    return
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client gave up (a hang test)

            do_POST = _serve
            do_GET = _serve

        return Handler


def _answer_normally(kind: str, headers: dict[str, str], body: bytes) -> Answer:
    try:
        data = json.loads(body) if body else None
    except ValueError:
        data = None
    if kind == "slack":
        if not isinstance(data, dict) or not data.get("text"):
            return Answer(400, body=b"no_text")
        return Answer(200, body=b"ok")
    if kind == "github":
        if not headers.get("authorization", "").startswith(("Bearer ", "token ")):
            return Answer(401, body=b'{"message": "Requires authentication"}')
        if not isinstance(data, dict) or data.get("state") not in GITHUB_STATES:
            return Answer(422, body=b'{"message": "Validation Failed"}')
        if len(str(data.get("description") or "")) > 140:
            return Answer(422, body=b'{"message": "description is too long"}')
        return Answer(201, body=json.dumps({"id": 1, **data}).encode())
    if not headers.get("private-token"):
        return Answer(401, body=b'{"message": "401 Unauthorized"}')
    if not isinstance(data, dict) or data.get("state") not in GITLAB_STATES:
        return Answer(400, body=b'{"error": "state does not have a valid value"}')
    return Answer(201, body=json.dumps({"id": 1, "status": data["state"], **data}).encode())


@contextmanager
def open_status_sinks() -> Iterator[StatusSinks]:
    sinks = StatusSinks()
    sinks.start()
    try:
        yield sinks
    finally:
        sinks.stop()
