"""fleet.files.RunFiles over the real outbound client against loopback servers that fail:
5xx answers and a server that is down for a while are retried until the transfer goes
through; what it finally cannot do is a RunFilesError naming no URL or token."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from conveyor.fleet.files import RunFiles, RunFilesError, files_policy
from conveyor.outbound.client import OutboundClient
from conveyor.outbound.retry import RetryPolicy
from tests.fakes.upstreams.server import Answer, HttpServer, Request

TOKEN = "r1:" + "ab" * 32
QUICK = RetryPolicy(max_attempts=40, max_total_s=20.0, initial_wait_s=0.05, max_wait_s=0.2)


@pytest.fixture
async def http() -> AsyncIterator[OutboundClient]:
    client = OutboundClient(files_policy(timeout_s=5))
    yield client
    await client.aclose()


async def test_run_files_retries_5xx_answers(http: OutboundClient) -> None:
    seen: list[Request] = []

    async def handle(request: Request) -> Answer:
        seen.append(request)
        return Answer(503) if len(seen) < 3 else Answer(200, b"{}")

    server = HttpServer(handle)
    base = await server.start()
    try:
        files = RunFiles(base, TOKEN, "r1", http=http, retry=QUICK)
        await files.send_dotenv("build", {"A": "1"})
    finally:
        await server.stop()
    assert [r.method for r in seen] == ["PUT"] * 3
    assert seen[-1].path == "/api/v1/runs/r1/jobs/build/dotenv"
    assert seen[-1].headers["authorization"] == f"Bearer {TOKEN}"


async def test_run_files_upload_survives_a_server_restart(
    http: OutboundClient, tmp_path: Path
) -> None:
    received: list[bytes] = []

    async def handle(request: Request) -> Answer:
        received.append(request.body)
        return Answer(200, b'{"files": 1}')

    first = HttpServer(handle)
    base = await first.start()
    port = first.port
    await first.stop()  # the server goes away before the job ends
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "app.txt").write_text("built")
    files = RunFiles(base, TOKEN, "r1", http=http, retry=QUICK)
    sending = asyncio.ensure_future(files.send_artifacts("build", tmp_path / "dist"))
    await asyncio.sleep(0.5)
    assert not sending.done()
    second = HttpServer(handle)
    await second.start(port)  # and comes back
    try:
        async with asyncio.timeout(15):
            assert await sending == 1
    finally:
        await second.stop()
    assert len(received) == 1 and received[0][:2] == b"\x1f\x8b"  # one gzip body arrived


async def test_run_files_gives_up_with_a_clean_error(http: OutboundClient) -> None:
    async def handle(request: Request) -> Answer:
        return Answer(502, b"upstream says secret things")

    server = HttpServer(handle)
    base = await server.start()
    try:
        files = RunFiles(
            base, TOKEN, "r1", http=http, retry=RetryPolicy(max_attempts=2, should_wait=False)
        )
        with pytest.raises(RunFilesError) as caught:
            await files.fetch_dotenv("build")
    finally:
        await server.stop()
    message = str(caught.value)
    assert message == (
        "files API: dotenv of build: the server kept answering 502 "
        "(is it overloaded or restarting?)"
    )
    assert TOKEN not in message and "secret" not in message


async def test_run_files_refusal_is_not_retried(http: OutboundClient) -> None:
    seen: list[Request] = []

    async def handle(request: Request) -> Answer:
        seen.append(request)
        return Answer(403, b'{"error": {}}')

    server = HttpServer(handle)
    base = await server.start()
    try:
        files = RunFiles(base, TOKEN, "r1", http=http, retry=QUICK)
        with pytest.raises(RunFilesError, match="answered 403"):
            await files.send_dotenv("build", {})
    finally:
        await server.stop()
    assert len(seen) == 1


async def test_run_files_404_is_nothing_saved(http: OutboundClient, tmp_path: Path) -> None:
    async def handle(request: Request) -> Answer:
        return Answer(404, b"{}")

    server = HttpServer(handle)
    base = await server.start()
    try:
        files = RunFiles(base, TOKEN, "r1", http=http, retry=QUICK)
        assert await files.fetch_artifacts("build", tmp_path / "a") is None
        assert await files.fetch_dotenv("build") is None
        assert await files.fetch_cache("deps", tmp_path / "c") is None
    finally:
        await server.stop()
