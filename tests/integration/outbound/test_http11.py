"""Http11Client beyond the HttpClient conformance suite: what makes it cheap (one kept-alive
connection per origin) and what keeping connections must not break (a connection the server
closed while idle, a policy that would need a proxy)."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from conveyor.errors import UpstreamUnreachable
from conveyor.outbound.base import ClientPolicy
from conveyor.outbound.http11 import Http11Client

POLICY = ClientPolicy(timeout_s=2, max_body_bytes=1000, slots=4, trust_env=False)


class Server:
    """A loopback HTTP/1.1 server counting connections; `close_after_answer` closes each
    connection after its first answer without saying so (no `Connection: close`); `tls`
    serves HTTPS."""

    def __init__(
        self, *, close_after_answer: bool = False, tls: ssl.SSLContext | None = None
    ) -> None:
        self.close_after_answer = close_after_answer
        self.tls = tls
        self.connections = 0
        self.url = ""
        self._server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
                if self.close_after_answer:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> Server:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        scheme = "https" if self.tls else "http"
        self.url = f"{scheme}://localhost:{self._server.sockets[0].getsockname()[1]}/x"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()


@pytest.fixture
async def client() -> AsyncIterator[Http11Client]:
    opened = Http11Client(POLICY)
    yield opened
    await opened.aclose()


async def test_http11_keeps_one_connection_alive_for_sequential_requests(
    client: Http11Client,
) -> None:
    async with Server() as server:
        for _ in range(20):
            assert (await client.request("GET", server.url)).body == b"ok"
    assert server.connections == 1


async def test_http11_opens_at_most_its_slots_for_concurrent_requests(
    client: Http11Client,
) -> None:
    async with Server() as server:
        replies = await asyncio.gather(*(client.request("GET", server.url) for _ in range(40)))
    assert {r.status_code for r in replies} == {200}
    assert server.connections <= POLICY.slots


async def test_http11_gets_again_on_a_connection_the_server_closed_while_idle(
    client: Http11Client,
) -> None:
    async with Server(close_after_answer=True) as server:
        for _ in range(5):
            assert (await client.request("GET", server.url)).status_code == 200
            await asyncio.sleep(0.02)  # the close has arrived: the idle one is skipped
        for _ in range(5):  # at once: the request may meet the closed socket, then again
            assert (await client.request("GET", server.url)).status_code == 200
    assert 10 <= server.connections <= 15


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
async def test_http11_speaks_tls_and_verifies_the_certificate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(cert, key)
    async with Server(tls=served) as server:
        untrusting = Http11Client(POLICY)
        with pytest.raises(UpstreamUnreachable) as caught:
            await untrusting.request("GET", server.url)
        assert caught.value.cause == "SSLCertVerificationError"
        await untrusting.aclose()
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the CA store OpenSSL reads
        trusting = Http11Client(POLICY)
        replies = [await trusting.request("GET", server.url) for _ in range(3)]
        await trusting.aclose()
    assert [r.body for r in replies] == [b"ok"] * 3
    assert server.connections == 1  # the refused handshake never reached it; one kept alive


def test_http11_refuses_a_policy_that_trusts_the_environment() -> None:
    with pytest.raises(ValueError, match="no proxy"):
        Http11Client(ClientPolicy(trust_env=True))
