"""The one HTTP boundary of the monitor: every upstream call goes through `Upstream.request`.

It owns timeouts, the response size cap, JSON decoding, mapping failures onto the sanitized
UpstreamError tree (`upstream 502`, `timeout after 8s`, `rate limited until …`,
`invalid JSON`, `response too large`), rate-limit gates per upstream (no request is sent
while a gate is closed), safe retries (idempotent GETs on 502/503/504 and broken
connections only), and counting requests by provider and code. It never logs or raises a
header value, a URL with a token, or a raw body.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.cookiejar
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import orjson
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from conveyor.errors import (
    UpstreamAuthError,
    UpstreamBadPayload,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
)

__all__ = [
    "ClientPool",
    "Reply",
    "Upstream",
    "format_reset",
    "open_client",
    "rate_limit_reset",
]

MAX_BACKOFF = timedelta(hours=1)
DEFAULT_BACKOFF = timedelta(seconds=60)
_RETRYABLE_STATUS = frozenset({502, 503, 504})

Clock = Callable[[], datetime]
ResponseHook = Callable[[str, str, Mapping[str, str]], None]


@dataclass(frozen=True, slots=True)
class Reply:
    """A decoded upstream answer: status, headers (lower-case names) and the JSON value
    (None for 304 / 201 / 204 without a body)."""

    status_code: int
    headers: Mapping[str, str]
    data: Any
    cookies: tuple[str, ...] = ()


def open_client(
    connections: int, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """An httpx client that keeps no cookies (Jenkins sessions are carried explicitly, per
    crumb) and follows no redirects (a redirect could carry a token elsewhere)."""
    jar = http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(
        cookies=jar, follow_redirects=False, limits=limits, trust_env=False, transport=transport
    )


class ClientPool:
    """`slots` concurrent requests spread over small httpx clients of `per_client`
    connections each. httpcore's pool does work proportional to its connections on every
    request (64 connections in one client cost 10x the CPU of 8 clients of 8, measured by
    bench/monitor_sync.py); a checked-out slot never waits inside httpcore's pool."""

    def __init__(
        self,
        slots: int,
        *,
        per_client: int = 8,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        count = -(-slots // per_client)
        self.clients = [open_client(per_client, transport) for _ in range(count)]
        self._free: asyncio.Queue[httpx.AsyncClient] = asyncio.Queue()
        for slot in range(slots):
            self._free.put_nowait(self.clients[slot % count])

    @contextlib.asynccontextmanager
    async def checkout(self) -> AsyncIterator[httpx.AsyncClient]:
        client = await self._free.get()
        try:
            yield client
        finally:
            self._free.put_nowait(client)

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()


def format_reset(reset_at: datetime) -> str:
    return reset_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rate_limit_reset(status: int, headers: Mapping[str, str], now: datetime) -> datetime | None:
    """When a rate-limited answer (429, or 403 with no requests remaining) allows the next
    request: Retry-After, else the reset epoch header, else a minute; capped at an hour."""
    remaining = headers.get("x-ratelimit-remaining") or headers.get("ratelimit-remaining")
    if status != 429 and not (status == 403 and remaining == "0"):
        return None
    reset_at = now + DEFAULT_BACKOFF
    retry_after = headers.get("retry-after", "").strip()
    epoch = headers.get("x-ratelimit-reset") or headers.get("ratelimit-reset")
    if retry_after.isdigit():
        reset_at = now + timedelta(seconds=int(retry_after))
    elif retry_after:
        try:
            reset_at = parsedate_to_datetime(retry_after).astimezone(UTC)
        except (TypeError, ValueError):
            reset_at = now + DEFAULT_BACKOFF
    elif epoch is not None and epoch.strip().isdigit():
        reset_at = datetime.fromtimestamp(int(epoch), tz=UTC)
    return min(max(reset_at, now), now + MAX_BACKOFF)


class Upstream:
    """Shared by every provider of one Monitor. `on_response(provider, code, headers)` sees
    each answer (code is the status or a failure kind such as "timeout")."""

    def __init__(
        self,
        pool: ClientPool,
        *,
        timeout_s: float,
        max_body_bytes: int,
        clock: Clock,
        on_response: ResponseHook,
        retry_wait_s: float = 0.2,
        attempts: int = 2,
    ) -> None:
        self.pool = pool
        self.timeout_s = timeout_s
        self.max_body_bytes = max_body_bytes
        self.clock = clock
        self.on_response = on_response
        self.retry_wait_s = retry_wait_s
        self.attempts = attempts
        self._gates: dict[str, datetime] = {}

    def gate_closed_until(self, gate: str) -> datetime | None:
        reset_at = self._gates.get(gate)
        if reset_at is None or reset_at <= self.clock():
            return None
        return reset_at

    async def request(
        self,
        provider: str,
        method: str,
        url: str,
        *,
        gate: str,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        expect_json: bool = True,
    ) -> Reply:
        """Send one request (retried only when safe); raise an UpstreamError on failure."""
        reset_at = self.gate_closed_until(gate)
        if reset_at is not None:
            raise UpstreamRateLimited(
                f"rate limited until {format_reset(reset_at)}", reset_at=reset_at
            )
        if method != "GET":
            return await self._send(provider, method, url, gate, headers, params, expect_json)
        retrying = AsyncRetrying(
            retry=retry_if_exception(_is_retryable),
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential_jitter(
                multiplier=self.retry_wait_s, jitter=self.retry_wait_s, max=4 * self.retry_wait_s
            ),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._send(provider, method, url, gate, headers, params, expect_json)
        raise AssertionError("unreachable: tenacity reraises the last error")  # pragma: no cover

    async def _send(
        self,
        provider: str,
        method: str,
        url: str,
        gate: str,
        headers: Mapping[str, str] | None,
        params: Mapping[str, str] | None,
        expect_json: bool,
    ) -> Reply:
        try:
            async with self.pool.checkout() as client:
                request = client.build_request(
                    method, url, headers=headers, params=params, timeout=self.timeout_s
                )
                response = await client.send(request, stream=True)
                try:
                    body = await self._read_capped(provider, response)
                finally:
                    await response.aclose()
        except httpx.TimeoutException as exc:
            self.on_response(provider, "timeout", {})
            raise UpstreamTimeout(f"timeout after {self.timeout_s:g}s") from exc
        except httpx.TransportError as exc:
            self.on_response(provider, "connection", {})
            raise UpstreamError("connection failed") from exc
        status = response.status_code
        lowered = {k.lower(): v for k, v in response.headers.items()}
        self.on_response(provider, str(status), lowered)
        reply = self._decode(status, lowered, body, gate, expect_json)
        cookies = tuple(c.split(";", 1)[0].strip() for c in response.headers.get_list("set-cookie"))
        return Reply(reply.status_code, reply.headers, reply.data, cookies)

    async def _read_capped(self, provider: str, response: httpx.Response) -> bytes:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            self.on_response(provider, "too_large", {})
            raise UpstreamBadPayload("response too large", status_code=response.status_code)
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():  # decoded: the cap also stops zip bombs
            size += len(chunk)
            if size > self.max_body_bytes:
                self.on_response(provider, "too_large", {})
                raise UpstreamBadPayload("response too large", status_code=response.status_code)
            chunks.append(chunk)
        return b"".join(chunks)

    def _decode(
        self, status: int, headers: Mapping[str, str], body: bytes, gate: str, expect_json: bool
    ) -> Reply:
        reset_at = rate_limit_reset(status, headers, self.clock())
        if reset_at is not None:
            self._gates[gate] = reset_at
            raise UpstreamRateLimited(
                f"rate limited until {format_reset(reset_at)}",
                reset_at=reset_at,
                status_code=status,
            )
        if status in (401, 403):
            raise UpstreamAuthError(
                f"upstream {status} (check the target's token)", status_code=status
            )
        if status == 304 or (status < 300 and not expect_json):
            return Reply(status, headers, None)
        if status >= 300:
            raise UpstreamError(f"upstream {status}", status_code=status)
        try:
            return Reply(status, headers, orjson.loads(body))
        except orjson.JSONDecodeError as exc:
            raise UpstreamBadPayload("invalid JSON", status_code=status) from exc


def _is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, UpstreamRateLimited | UpstreamTimeout | UpstreamAuthError):
        return False
    if isinstance(exc, UpstreamBadPayload):
        return False
    if isinstance(exc, UpstreamError):
        return exc.status_code is None or exc.status_code in _RETRYABLE_STATUS
    return False
