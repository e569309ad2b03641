"""`conveyor serve` as a real child process (uvicorn, SQLite store, the app's lifespan)
watching the fake upstreams: it answers from the cache while every upstream hangs, restores
its snapshots after a restart, and no log line or response ever holds a fake token."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from tests.fakes.upstreams import FAKE_LEAKS, FakeUpstream, Fault
from tests.fakes.upstreams.scenario import ENV, TOKENS

API_TOKEN = "serve-api-token-0123456789abcdef"


def _config(tmp_path: Path, url: str) -> Path:
    targets = "".join(
        f'[[monitor.targets]]\nprovider = "{p}"\nrepo = "{r}"\nurl = "{url}"\n{extra}\n'
        for p, r, extra in [
            ("gitlab", "group/sub/app", 'token_env = "GITLAB_TOKEN"\n'),
            ("github", "octo/api", 'token_env = "GITHUB_TOKEN"\n'),
            ("jenkins", "folder/app", 'user_env = "JENKINS_USER"\ntoken_env = "JENKINS_TOKEN"\n'),
        ]
    )
    path = tmp_path / "conveyor.toml"
    path.write_text(
        '[server]\napi_token_env = "CONVEYOR_API_TOKEN"\npublic_read = true\n\n'
        "[monitor]\ninterval = 0.3\njitter = 0\ntimeout = 0.5\n\n" + targets,
        encoding="utf-8",
    )
    return path


@asynccontextmanager
async def _serve(config: Path, home: Path, log: list[str]) -> AsyncIterator[httpx.AsyncClient]:
    env = {**os.environ, **ENV, "CONVEYOR_API_TOKEN": API_TOKEN, "CONVEYOR_HOME": str(home)}
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "conveyor",
        "serve",
        "-c",
        str(config),
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
    )
    assert child.stdout is not None
    port = None
    while port is None:
        line = (await asyncio.wait_for(child.stdout.readline(), timeout=20)).decode()
        assert line, "server exited before listening: " + "".join(log)
        log.append(line)
        if "server.listening" in line:
            port = json.loads(line)["port"]
    drain = asyncio.create_task(_drain(child.stdout, log))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            yield client
    finally:
        child.send_signal(signal.SIGTERM)
        await asyncio.wait_for(child.wait(), timeout=20)
        await drain


async def _drain(stream: asyncio.StreamReader, log: list[str]) -> None:
    async for line in stream:
        log.append(line.decode())


async def _wait_for(client: httpx.AsyncClient, check: Any) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    while True:
        entries = (await client.get("/api/v1/pipelines")).json()
        if check(entries) or time.monotonic() > deadline:
            return entries  # type: ignore[no-any-return]
        await asyncio.sleep(0.05)


def _assert_no_secret(text: str) -> None:
    for secret in (*TOKENS, *FAKE_LEAKS, API_TOKEN):
        assert secret not in text


async def test_serve_answers_from_cache_while_upstreams_hang(
    fake: FakeUpstream, tmp_path: Path
) -> None:
    log: list[str] = []
    bodies: list[str] = []
    config = _config(tmp_path, fake.url)
    async with _serve(config, tmp_path / "home", log) as client:
        fresh = await _wait_for(client, lambda es: all(not e["stale"] for e in es))
        for repo in ("group/sub/app", "octo/api", "folder/app"):
            fake.faults[repo] = Fault.HANG
        stale = await _wait_for(client, lambda es: all(e["stale"] for e in es))
        latencies = []
        for _ in range(30):
            started = time.perf_counter()
            response = await client.get("/api/v1/pipelines/group/sub/app@main")
            latencies.append(time.perf_counter() - started)
            assert response.status_code == 200
            bodies.append(response.text)
        bodies += [(await client.get(p)).text for p in ("/metrics", "/cc.xml")]
    assert all(not e["stale"] for e in fresh)
    assert {"timeout after 0.5s"} == {e["error"] for e in stale}
    assert all(e["pipelines"] for e in stale)
    # A handler that waited for an upstream would take the 0.5 s deadline.
    assert sorted(latencies)[len(latencies) // 2] < 0.1
    assert sorted(latencies)[int(len(latencies) * 0.9)] < 0.3
    _assert_no_secret("".join(log) + "".join(bodies))


async def test_serve_restart_serves_snapshots_at_once(fake: FakeUpstream, tmp_path: Path) -> None:
    log: list[str] = []
    config = _config(tmp_path, fake.url)
    async with _serve(config, tmp_path / "home", log) as client:
        await _wait_for(client, lambda es: all(not e["stale"] for e in es))
        await asyncio.sleep(0.1)  # the snapshot is saved right after the tick
    for repo in ("group/sub/app", "octo/api", "folder/app"):
        fake.faults[repo] = Fault.HANG
    async with _serve(config, tmp_path / "home", log) as client:
        first = (await client.get("/api/v1/pipelines")).json()
    assert [len(e["pipelines"]) for e in first] == [4, 3, 2]
    assert all(e["stale"] for e in first)
    _assert_no_secret("".join(log))
