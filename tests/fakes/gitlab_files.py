"""GitLab files for `include: project`, `template` and `component`, without the network.

FakeGitLabFiles: config.remote.GitLabFiles answering from dicts (a missing file is
IncludeFetchError("HTTP 404"); `reachable = False` makes every call IncludeUnreachable).
FakeGitLabApi: a GitLab instance on 127.0.0.1 (a thread with http.server) speaking the API
paths conveyor.outbound.gitlab_files uses: project files raw at a ref, CI/CD templates;
it checks PRIVATE-TOKEN when `token` is set and records the paths it was asked for.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from conveyor.errors import IncludeFetchError, IncludeUnreachable

__all__ = ["FakeGitLabApi", "FakeGitLabFiles"]

# (project, path, ref or "HEAD") -> file body
ProjectFiles = dict[tuple[str, str, str], bytes]


class FakeGitLabFiles:
    def __init__(
        self, files: ProjectFiles, templates: dict[str, bytes], host: str = "gitlab.test"
    ) -> None:
        self.files = files
        self.templates = templates
        self.reachable = True
        self._host = host

    @property
    def host(self) -> str:
        return self._host

    def project_file(self, project: str, path: str, ref: str | None) -> bytes:
        if not self.reachable:
            raise IncludeUnreachable("cannot connect (fake)")
        body = self.files.get((project, path.lstrip("/"), ref or "HEAD"))
        if body is None:
            raise IncludeFetchError("HTTP 404")
        return body

    def template(self, name: str) -> bytes:
        if not self.reachable:
            raise IncludeUnreachable("cannot connect (fake)")
        if name not in self.templates:
            raise IncludeFetchError("HTTP 404")
        return self.templates[name]


class FakeGitLabApi:
    """The API of a GitLab instance for the same files; `close` stops it."""

    def __init__(self, files: ProjectFiles, templates: dict[str, bytes], token: str = "") -> None:
        self.files = files
        self.templates = templates
        self.token = token
        self.asked: list[str] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                """Quiet: the tests read answers, not logs."""

            def do_GET(self) -> None:
                api.answer(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def answer(self, request: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(request.path)
        self.asked.append(parts.path)
        if self.token and request.headers.get("PRIVATE-TOKEN") != self.token:
            self._send(request, 401, b'{"message":"401 Unauthorized"}')
            return
        segments = parts.path.split("/")  # raw: encoded slashes stay inside a segment
        if segments[1:4] == ["api", "v4", "projects"] and segments[5:7] == ["repository", "files"]:
            ref = parse_qs(parts.query).get("ref", ["HEAD"])[0]
            key = (unquote(segments[4]), unquote(segments[7]), ref)
            body = self.files.get(key)
            self._send(request, 200 if body is not None else 404, body or b"{}")
        elif segments[1:5] == ["api", "v4", "templates", "gitlab_ci_ymls"]:
            name = unquote(segments[5]) + ".gitlab-ci.yml"
            found = self.templates.get(name)
            if found is None:
                self._send(request, 404, b'{"message":"404 Template Not Found"}')
            else:
                content = json.dumps({"name": name, "content": found.decode()})
                self._send(request, 200, content.encode())
        else:
            self._send(request, 404, b'{"message":"404 Not Found"}')

    @staticmethod
    def _send(request: BaseHTTPRequestHandler, status: int, body: bytes) -> None:
        request.send_response(status)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
