"""One RemoteFetcher conformance suite (conveyor.config.remote), run against every
implementation: HttpRemoteFetcher over the real client and a loopback server, the same
fetcher over the scripted client (tests/fakes/http_client.py), and FakeRemoteFetcher
(tests/fakes/remote_files.py), which the config tests use. Each returns the body or raises
IncludeFetchError whose message is the short reason and never the URL or its token."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest

from conveyor.config.remote import RemoteFetcher
from conveyor.errors import IncludeFetchError
from conveyor.outbound.base import ClientPolicy, HttpClient
from conveyor.outbound.remote import HttpRemoteFetcher
from tests.fakes.http_client import ScriptedHttpClient
from tests.fakes.remote_files import FakeRemoteFetcher
from tests.fakes.upstreams.server import Answer, HttpServer, Request

BODY = b"build:\n  script: echo build\n"
TOKEN = "s3cr3t-token"
# path -> what every implementation must answer: the body, or the reason of the error.
EXPECTED: dict[str, bytes | str] = {
    "/ci.yml": BODY,
    f"/missing.yml?private_token={TOKEN}": "HTTP 404",
    "/big.yml": "larger than 1000 bytes",
    "/redirect/2": BODY,
    "/redirect/5": "more than 5 redirects",
    "/hang": "timeout after 0.3s",
    "/reset": "cannot connect (RemoteProtocolError)",
}


def answer(request: Request) -> Answer:
    path = request.path
    if path == "/ci.yml":
        return Answer(200, BODY)
    if path == "/big.yml":
        return Answer(200, b"#" * 1001)
    if path.startswith("/redirect/"):
        left = int(path.rsplit("/", 1)[1])
        return Answer(302, b"", {"Location": "/ci.yml" if left == 0 else f"/redirect/{left - 1}"})
    if path == "/hang":
        return Answer(action="hang")
    if path == "/reset":
        return Answer(action="reset")
    return Answer(404, f"no such file: {path}?{request.query}".encode())


@pytest.fixture(params=["outbound", "scripted-client", "fake"])
async def fetcher(request: pytest.FixtureRequest) -> AsyncIterator[tuple[RemoteFetcher, str]]:
    """(fetcher, base URL); `fetch` is synchronous, so tests call it in a thread."""
    if request.param == "outbound":

        async def handle(sent: Request) -> Answer:
            return answer(sent)

        server = HttpServer(handle)
        base = await server.start()
        yield HttpRemoteFetcher(allow=("127.0.0.1",), timeout_s=0.3, max_body_bytes=1000), base
        await server.stop()
        return
    base = "http://files.test"
    if request.param == "scripted-client":

        def open_client(policy: ClientPolicy, allow: Sequence[str]) -> HttpClient:
            return ScriptedHttpClient(policy, answer)

        yield HttpRemoteFetcher(timeout_s=0.3, max_body_bytes=1000, open_client=open_client), base
        return
    bodies = {
        base + path: expected if isinstance(expected, bytes) else IncludeFetchError(expected)
        for path, expected in EXPECTED.items()
    }
    yield FakeRemoteFetcher(bodies), base


@pytest.mark.parametrize("path", sorted(EXPECTED))
async def test_remote_fetcher_answers_body_or_reason(
    fetcher: tuple[RemoteFetcher, str], path: str
) -> None:
    remote, base = fetcher
    expected = EXPECTED[path]
    if isinstance(expected, bytes):
        assert expected == await asyncio.to_thread(remote.fetch, base + path)
        return
    with pytest.raises(IncludeFetchError) as caught:
        await asyncio.to_thread(remote.fetch, base + path)
    message = str(caught.value)
    # A reset shows as RemoteProtocolError or ReadError, depending on when the kernel tells.
    assert expected == message.replace("(ReadError)", "(RemoteProtocolError)")
    assert TOKEN not in message and "127.0.0.1" not in message and "files.test" not in message
