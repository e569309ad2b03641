"""One HttpClient conformance suite (conveyor.outbound.base), run against OutboundClient and
Http11Client over a real loopback HTTP server (tests/fakes/upstreams/server.py) and against
the scripted fake
(tests/fakes/http_client.py), so callers' tests that use the fake see what production sees:
answers returned as they are, the body cap, the redirect limit, the deadline, unreachable
upstreams, Retry-After (seconds and HTTP-date), cookies kept by no one."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from conveyor.errors import (
    UpstreamRedirectError,
    UpstreamTimeout,
    UpstreamTooLarge,
    UpstreamUnreachable,
)
from conveyor.outbound.base import ClientPolicy, HttpClient
from conveyor.outbound.client import OutboundClient
from conveyor.outbound.http11 import Http11Client
from tests.fakes.http_client import ScriptedHttpClient
from tests.fakes.upstreams.server import Answer, HttpServer, Request

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
POLICY = ClientPolicy(timeout_s=0.5, max_body_bytes=1000, max_redirects=0, slots=2)


def answer(request: Request) -> Answer:
    """The scenario both implementations are checked against, by path."""
    path = request.path
    if path == "/echo":
        body = {"method": request.method, "query": request.query, "body": request.body.decode()}
        body["header"] = request.headers.get("x-sent", "")
        body["cookie"] = request.headers.get("cookie", "")
        return Answer(200, json.dumps(body).encode(), {"X-Answer": "yes"})
    if path == "/missing":
        return Answer(404, b"no such thing", {"Content-Type": "text/plain"})
    if path.startswith("/redirect/"):
        left = int(path.rsplit("/", 1)[1])
        location = "/echo" if left == 0 else f"/redirect/{left - 1}"
        return Answer(302, b"", {"Location": location})
    if path == "/to-ftp":
        return Answer(302, b"", {"Location": "ftp://files.example/a.yml"})
    if path == "/big":
        return Answer(200, b"x" * 1001)
    if path == "/huge":
        return Answer(200, action="huge")
    if path == "/hang":
        return Answer(action="hang")
    if path == "/reset":
        return Answer(action="reset")
    if path == "/slow-down":
        return Answer(429, b"", {"Retry-After": request.query["after"]})
    if path == "/cookie":
        return Answer(200, b"{}", {"Set-Cookie": "JSESSIONID=abc; Path=/; HttpOnly"})
    return Answer(500, b"unexpected path")


OpenClient = Callable[[ClientPolicy], Awaitable[tuple[HttpClient, str]]]


@pytest.fixture(params=["outbound", "http11", "fake"])
async def open_client(request: pytest.FixtureRequest) -> AsyncIterator[OpenClient]:
    """`await open_client(policy)` -> (client, base URL); everything closed afterwards."""
    clients: list[HttpClient] = []
    server: HttpServer | None = None
    if request.param != "fake":

        async def handle(sent: Request) -> Answer:
            return answer(sent)

        server = HttpServer(handle)
        base = await server.start()
    else:
        base = "http://fake.test"

    async def make(policy: ClientPolicy) -> tuple[HttpClient, str]:
        client: HttpClient
        if request.param == "outbound":
            client = OutboundClient(policy)
        elif request.param == "http11":  # uses no proxy: refuses a policy that trusts the env
            client = Http11Client(replace(policy, trust_env=False))
        else:
            client = ScriptedHttpClient(policy, answer)
        clients.append(client)
        return client, base

    yield make
    for client in clients:
        await client.aclose()
    if server is not None:
        await server.stop()


async def test_client_returns_status_body_and_lowercase_headers(open_client: OpenClient) -> None:
    client, base = await open_client(POLICY)
    reply = await client.request("GET", base + "/echo")
    assert (reply.status_code, reply.headers["x-answer"]) == (200, "yes")
    assert json.loads(reply.body)["method"] == "GET"


async def test_client_sends_headers_params_and_json(open_client: OpenClient) -> None:
    client, base = await open_client(POLICY)
    reply = await client.request(
        "POST", base + "/echo", headers={"X-Sent": "1"}, params={"a": "b"}, json={"k": 1}
    )
    sent = json.loads(reply.body)
    assert (sent["method"], sent["query"], sent["header"]) == ("POST", {"a": "b"}, "1")
    assert json.loads(sent["body"]) == {"k": 1}


async def test_client_sends_a_raw_body(open_client: OpenClient) -> None:
    client, base = await open_client(POLICY)
    reply = await client.request("PUT", base + "/echo", content=b"raw bytes\n")
    sent = json.loads(reply.body)
    assert (sent["method"], sent["body"]) == ("PUT", "raw bytes\n")


async def test_client_answers_an_error_status_as_a_reply(open_client: OpenClient) -> None:
    client, base = await open_client(POLICY)
    reply = await client.request("GET", base + "/missing")
    assert (reply.status_code, reply.body) == (404, b"no such thing")


async def test_client_refuses_a_body_over_the_cap(open_client: OpenClient) -> None:
    client, base = await open_client(POLICY)
    with pytest.raises(UpstreamTooLarge) as caught:
        await client.request("GET", base + "/big")
    assert (caught.value.reason, caught.value.limit_bytes) == ("response too large", 1000)


async def test_client_stops_reading_an_endless_body(open_client: OpenClient) -> None:
    client, base = await open_client(POLICY)
    with pytest.raises(UpstreamTooLarge):
        await client.request("GET", base + "/huge")


async def test_client_without_redirects_returns_the_redirect(open_client: OpenClient) -> None:
    client, base = await open_client(POLICY)
    reply = await client.request("GET", base + "/redirect/0")
    assert (reply.status_code, reply.headers["location"]) == (302, "/echo")


async def test_client_follows_redirects_up_to_the_limit(open_client: OpenClient) -> None:
    client, base = await open_client(replace(POLICY, max_redirects=2))
    reply = await client.request("GET", base + "/redirect/1")
    assert (reply.status_code, json.loads(reply.body)["method"]) == (200, "GET")


async def test_client_refuses_one_redirect_too_many(open_client: OpenClient) -> None:
    client, base = await open_client(replace(POLICY, max_redirects=2))
    with pytest.raises(UpstreamRedirectError, match=r"^more than 2 redirects$"):
        await client.request("GET", base + "/redirect/2")


async def test_client_refuses_a_redirect_to_another_scheme(open_client: OpenClient) -> None:
    client, base = await open_client(replace(POLICY, max_redirects=2))
    with pytest.raises(UpstreamRedirectError, match=r"^redirected to a URL that is not http"):
        await client.request("GET", base + "/to-ftp")


async def test_client_deadline_is_an_upstream_timeout(open_client: OpenClient) -> None:
    client, base = await open_client(replace(POLICY, timeout_s=0.2))
    with pytest.raises(UpstreamTimeout, match=r"^timeout after 0.2s$"):
        await client.request("GET", base + "/hang")


async def test_client_broken_connection_is_unreachable(open_client: OpenClient) -> None:
    client, base = await open_client(POLICY)
    with pytest.raises(UpstreamUnreachable) as caught:
        await client.request("GET", base + "/reset")
    assert caught.value.reason == "connection failed"
    assert caught.value.cause and "127.0.0.1" not in str(caught.value)


@pytest.mark.parametrize(
    ("after", "expected_s"), [("7", 7.0), ("Mon, 23 Nov 2026 12:00:30 GMT", 30.0), ("soon", None)]
)
async def test_client_reply_parses_retry_after(
    open_client: OpenClient, after: str, expected_s: float | None
) -> None:
    client, base = await open_client(POLICY)
    reply = await client.request("GET", base + "/slow-down", params={"after": after})
    assert (reply.status_code, reply.retry_after_s(NOW)) == (429, expected_s)


async def test_client_reports_cookies_and_keeps_none(open_client: OpenClient) -> None:
    client, base = await open_client(POLICY)
    reply = await client.request("GET", base + "/cookie")
    assert reply.cookies == ("JSESSIONID=abc",)
    again = await client.request("GET", base + "/echo")
    assert json.loads(again.body)["cookie"] == ""
