"""OutboundClient: the one HTTP client implementation, httpx underneath (HttpClient Protocol).

Owns: a few small httpx.AsyncClients sharing `policy.slots` request slots (httpcore's pool
does work proportional to its connections on every request: 64 connections in one client
cost 10x the CPU of 8 clients of 8, measured by bench/monitor_sync.py; a checked-out slot
never waits inside httpcore's pool), explicit httpx timeouts plus one deadline over the
whole request (slot, connect, redirects, body), reading the body as a stream and stopping
at the cap (the declared Content-Length is checked first; the count is of decoded bytes, so
the cap also stops zip bombs), following redirects only as far as the policy allows, and
turning httpx's failures into the sanitized errors base.py lists. No cookie is kept: a
cookie could carry one upstream's session to another request (Jenkins crumbs are carried
explicitly by the caller).
Must not: retry (retry.py, by the caller's rules), decide what a status means, or log:
httpx's own request log (URL at INFO) is turned down, since a Slack webhook URL is a secret.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import logging
from collections.abc import Mapping

import httpx

from conveyor.errors import (
    UpstreamRedirectError,
    UpstreamTimeout,
    UpstreamTooLarge,
    UpstreamUnreachable,
)
from conveyor.outbound.base import ClientPolicy, Reply

__all__ = ["OutboundClient"]

PER_CLIENT = 8  # connections per httpx client (see the module docstring)


class OutboundClient:
    """HttpClient over httpx. `transport` is the test seam (httpx.MockTransport).

    The httpx clients are made here, not on the first request: making one builds an SSL
    context (tens of milliseconds), which must not be spent inside a request's deadline."""

    def __init__(
        self,
        policy: ClientPolicy,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        logging.getLogger("httpx").setLevel(logging.WARNING)
        self._policy = policy
        per_client = min(PER_CLIENT, policy.slots)
        count = -(-policy.slots // per_client)
        jar = http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        limits = httpx.Limits(max_connections=per_client, max_keepalive_connections=per_client)
        self._clients = [
            httpx.AsyncClient(
                cookies=jar,
                follow_redirects=policy.max_redirects > 0,
                max_redirects=policy.max_redirects,
                limits=limits,
                timeout=httpx.Timeout(policy.timeout_s),
                trust_env=policy.trust_env,
                headers=dict(policy.headers),
                transport=transport,
            )
            for _ in range(count)
        ]
        # Bound to an event loop only when a request has to wait for a slot.
        self._free: asyncio.Queue[httpx.AsyncClient] = asyncio.Queue()
        for slot in range(policy.slots):
            self._free.put_nowait(self._clients[slot % count])

    @property
    def policy(self) -> ClientPolicy:
        return self._policy

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        json: object = None,
        content: bytes | None = None,
    ) -> Reply:
        policy = self._policy
        try:
            async with asyncio.timeout(policy.timeout_s):
                client = await self._free.get()  # a slot: see the module docstring
                try:
                    request = client.build_request(
                        method, url, headers=headers, params=params, json=json,
                        content=content if json is None else None,
                    )  # fmt: skip
                    response = await client.send(request, stream=True)
                    try:
                        body = await self._read_capped(response)
                    finally:
                        await response.aclose()
                finally:
                    self._free.put_nowait(client)
        except (TimeoutError, httpx.TimeoutException):
            raise UpstreamTimeout(f"timeout after {policy.timeout_s:g}s") from None
        except httpx.TooManyRedirects:
            raise UpstreamRedirectError(f"more than {policy.max_redirects} redirects") from None
        except httpx.UnsupportedProtocol:
            raise UpstreamRedirectError("redirected to a URL that is not http or https") from None
        except httpx.HTTPError as exc:  # its text may name the host: only its class is kept
            name = type(exc).__name__
            raise UpstreamUnreachable("connection failed", cause=name) from None
        headers_lower = {name.lower(): value for name, value in response.headers.items()}
        cookies = tuple(c.split(";", 1)[0].strip() for c in response.headers.get_list("set-cookie"))
        return Reply(response.status_code, headers_lower, body, cookies)

    async def _read_capped(self, response: httpx.Response) -> bytes:
        limit = self._policy.max_body_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _too_large(limit, response.status_code)
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit, response.status_code)
            chunks.append(chunk)
        return b"".join(chunks)

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()


def _too_large(limit_bytes: int, status_code: int) -> UpstreamTooLarge:
    return UpstreamTooLarge("response too large", limit_bytes=limit_bytes, status_code=status_code)
