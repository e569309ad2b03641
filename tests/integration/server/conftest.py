"""A real conveyor server for tests: uvicorn on 127.0.0.1:0 in a thread, a real SQLite store
in tmp_path, real git repos as remotes. Shared by every server integration test module.

    with serve_app(settings, home=tmp_path / "home") as server:
        httpx.post(server.url("/webhooks/github"), ...)
        run = server.wait_for_run(run_id)
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import uvicorn
from fastapi import FastAPI

from conveyor.model import RunRecord
from conveyor.runs.listeners import RunListener
from conveyor.server.app import create_app
from conveyor.server.webhook_parse import github_signature
from conveyor.settings import Settings, parse_settings
from conveyor.store import open_store
from conveyor.store.sql import SqlRunStore
from tests.fakes.git_repos import GitRepo
from tests.sandboxing import BWRAP_MISSING

GH_SECRET = "gh-webhook-secret-0123456789abcdef"
GL_TOKEN = "gl-webhook-token-0123456789abcdef"
API_TOKEN = "api-token-0123456789abcdefghij"
ENV = {
    "GH_HOOK_SECRET": GH_SECRET,
    "GL_HOOK_TOKEN": GL_TOKEN,
    "CONVEYOR_API_TOKEN": API_TOKEN,
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": os.environ.get("HOME", "/"),
}
TEST_SANDBOX = "bwrap" if BWRAP_MISSING is None else "none"
PIPELINE = """\
name: demo
jobs:
  build:
    run: echo "built $CONVEYOR_SHA"
"""


def settings_text(
    github_url: str, gitlab_url: str, *, sandbox: str = TEST_SANDBOX, **server: Any
) -> str:
    """Settings with `server` keys; jobs sandboxed as the server's default does, where
    bwrap works (`sandbox="none"`: a test that hands files to a running job through
    tmp_path, which the sandbox's private /tmp hides)."""
    values = {"api_token_env": "CONVEYOR_API_TOKEN", "shutdown_grace": 2, **server}
    lines = ["[server]"]
    lines += [f"{key} = {orjson.dumps(value).decode()}" for key, value in values.items()]
    return (
        "\n".join(lines)
        + f"""

[sandbox]
mode = "{sandbox}"

[[repos]]
name = "acme/app"
provider = "github"
clone_url = "{github_url}"
secret_env = "GH_HOOK_SECRET"

[[repos]]
name = "group/sub/app"
provider = "gitlab"
clone_url = "{gitlab_url}"
secret_env = "GL_HOOK_TOKEN"
"""
    )


def make_settings(remote: GitRepo, *, sandbox: str = TEST_SANDBOX, **server: Any) -> Settings:
    text = settings_text(remote.clone_url, remote.clone_url, sandbox=sandbox, **server)
    return parse_settings(text, ENV)


@dataclass
class Served:
    base_url: str
    app: FastAPI
    store: SqlRunStore
    home: Path

    def url(self, path: str) -> str:
        return self.base_url + path

    def wait_for_run(self, run_id: str, timeout_s: float = 30.0) -> RunRecord:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            run = self.store.get_run(run_id)
            if run is not None and run.status.is_final:
                return run
            time.sleep(0.05)
        raise AssertionError(f"run {run_id} did not finish: {self.store.get_run(run_id)}")


@contextmanager
def serve_app(
    settings: Settings,
    *,
    home: Path,
    env: Mapping[str, str] = ENV,
    listeners: Sequence[RunListener] = (),
    prepare: Any = None,
) -> Iterator[Served]:
    """Run the app until the block ends; `prepare(app)` may add test routes first."""
    store = open_store(home)
    app = create_app(settings, store=store, env=env, home=home, listeners=listeners)
    if prepare is not None:
        prepare(app)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, loop="asyncio", http="h11", access_log=False, log_config=None, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise AssertionError("the test server did not start")
            time.sleep(0.01)
        yield Served(f"http://127.0.0.1:{port}", app, store, home)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        store.close()


def github_headers(
    body: bytes, *, event: str = "push", delivery: str | None = None
) -> dict[str, str]:
    headers = {
        "content-type": "application/json",
        "x-github-event": event,
        "x-hub-signature-256": github_signature(GH_SECRET, body),
    }
    if delivery is not None:
        headers["x-github-delivery"] = delivery
    return headers


def github_push_body(
    sha: str, *, ref: str = "refs/heads/main", before: str | None = None, **extra: Any
) -> bytes:
    payload: dict[str, Any] = {
        "ref": ref,
        "before": before or "0" * 40,
        "after": sha,
        "created": before is None,
        "deleted": False,
        "head_commit": {"id": sha, "message": "a commit"},
        "repository": {"full_name": "acme/app", "default_branch": "main"},
    }
    payload.update(extra)
    return orjson.dumps(payload)


def gitlab_push_payload(
    sha: str, *, project: str = "group/sub/app", ref: str = "refs/heads/main"
) -> dict[str, Any]:
    """A GitLab `Push Hook` body for a new branch (before = zeros), as GitLab sends it."""
    return {
        "object_kind": "push",
        "before": "0" * 40,
        "after": sha,
        "ref": ref,
        "checkout_sha": sha,
        "project": {"path_with_namespace": project, "default_branch": "main"},
        "commits": [{"id": sha, "message": "a commit"}],
    }


@pytest.fixture
def remote(tmp_path: Path) -> GitRepo:
    return GitRepo.create(tmp_path / "remote", {".conveyor.yml": PIPELINE, "README": "hi\n"})
