"""The monitor's calls to GitLab, GitHub and Jenkins: every one goes through `Upstream.request`.

Owns: what the monitor adds to the outbound client (conveyor.outbound's Http11Client, which
owns timeouts, the body cap, redirects and cookies): JSON decoding, mapping answers onto the
sanitized UpstreamError tree (`upstream 502`, `rate limited until …`, `invalid JSON`, and
the client's `timeout after 8s`, `connection failed`, `response too large`), rate-limit
gates per upstream (no request is sent while a gate is closed), safe retries (idempotent
GETs on 502/503/504 and broken connections only, through outbound.retry), and counting
requests by provider and code. It never logs or raises a header value, a URL with a token,
or a raw body.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import orjson

from conveyor.errors import (
    UpstreamAuthError,
    UpstreamBadPayload,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamTooLarge,
    UpstreamUnreachable,
)
from conveyor.monitor.turnstile import Turnstile
from conveyor.outbound.base import ClientPolicy, HttpClient, Reply
from conveyor.outbound.http11 import Http11Client
from conveyor.outbound.retry import RetryPolicy, parse_retry_after, retry_call

__all__ = [
    "JsonReply",
    "Upstream",
    "body_digest",
    "format_reset",
    "monitor_policy",
    "open_monitor_client",
    "rate_limit_reset",
    "retry_policy",
]

MAX_BACKOFF = timedelta(hours=1)
DEFAULT_BACKOFF = timedelta(seconds=60)
_RETRYABLE_STATUS = frozenset({502, 503, 504})

Clock = Callable[[], datetime]
ResponseHook = Callable[[str, str, Mapping[str, str]], None]


@dataclass(frozen=True, slots=True)
class JsonReply:
    """A decoded upstream answer: status, headers (lower-case names) and the JSON value
    (None for 304 / 201 / 204 without a body). Asked for (`request(digest=True)`): the
    body's `digest`; `is_unchanged` when it matched `known_digest`, its JSON not decoded."""

    status_code: int
    headers: Mapping[str, str]
    data: Any
    cookies: tuple[str, ...] = ()
    digest: bytes | None = None
    is_unchanged: bool = False


def body_digest(body: bytes) -> bytes:
    """What tells two answers' bodies apart (BLAKE2b, 128 bits)."""
    return hashlib.blake2b(body, digest_size=16).digest()


def monitor_policy(slots: int, *, timeout_s: float, max_body_bytes: int) -> ClientPolicy:
    """`slots` requests in flight, no redirects (one could carry a token elsewhere), the
    environment's proxy settings ignored (targets are named hosts)."""
    return ClientPolicy(
        timeout_s=timeout_s,
        max_body_bytes=max_body_bytes,
        max_redirects=0,
        slots=slots,
        trust_env=False,
    )


def open_monitor_client(slots: int, *, timeout_s: float, max_body_bytes: int) -> HttpClient:
    """The monitor's client under `monitor_policy`: the lean Http11Client (a sync of 10,000
    targets is CPU-bound on the HTTP client; docs/benchmarks.md)."""
    return Http11Client(monitor_policy(slots, timeout_s=timeout_s, max_body_bytes=max_body_bytes))


def retry_policy(timeout_s: float, wait_s: float) -> RetryPolicy:
    """Two attempts; the wait is wait_s plus up to wait_s of jitter (0: no wait, for tests).
    The total cap leaves both attempts their whole deadline (the sync's per-target deadline
    is the tighter bound)."""
    return RetryPolicy(
        max_attempts=2,
        max_total_s=2 * timeout_s + 4 * wait_s,
        initial_wait_s=wait_s,
        max_wait_s=4 * wait_s,
        jitter_s=wait_s,
        should_wait=wait_s > 0,
    )


def format_reset(reset_at: datetime) -> str:
    return reset_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rate_limit_reset(status: int, headers: Mapping[str, str], now: datetime) -> datetime | None:
    """When a rate-limited answer (429, or 403 with no requests remaining) allows the next
    request: Retry-After, else the reset epoch header, else a minute; capped at an hour."""
    remaining = headers.get("x-ratelimit-remaining") or headers.get("ratelimit-remaining")
    if status != 429 and not (status == 403 and remaining == "0"):
        return None
    reset_at = now + DEFAULT_BACKOFF
    retry_after_s = parse_retry_after(headers.get("retry-after"), now=now)
    epoch = headers.get("x-ratelimit-reset") or headers.get("ratelimit-reset")
    if retry_after_s is not None:
        reset_at = now + timedelta(seconds=retry_after_s)
    elif headers.get("retry-after", "").strip():
        reset_at = now + DEFAULT_BACKOFF  # present but unreadable
    elif epoch is not None and epoch.strip().isdigit():
        reset_at = datetime.fromtimestamp(int(epoch), tz=UTC)
    return min(max(reset_at, now), now + MAX_BACKOFF)


class Upstream:
    """Shared by every provider of one Monitor. `on_response(provider, code, headers)` sees
    each answer (code is the status or a failure kind such as "timeout"). With a
    `turnstile`, each answer waits for its turn (`monitor.turnstile`) before it is decoded
    and handed back, so answers arriving together are handled one per loop iteration."""

    def __init__(
        self,
        client: HttpClient,
        *,
        clock: Clock,
        on_response: ResponseHook,
        retry: RetryPolicy,
        turnstile: Turnstile | None = None,
    ) -> None:
        self.client = client
        self.clock = clock
        self.on_response = on_response
        self.retry = retry
        self.turnstile = turnstile
        self._gates: dict[str, datetime] = {}

    def gates(self) -> dict[str, datetime]:
        """Every rate-limit gate ever closed (`provider:base_url`) and its reset time (in the
        past once it opened again); for the metrics."""
        return dict(self._gates)

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
        digest: bool = False,
        known_digest: bytes | None = None,
    ) -> JsonReply:
        """Send one request (retried only when safe); raise an UpstreamError on failure.
        `digest`: also hand back the body's digest; a body whose digest is `known_digest`
        (an upstream without ETags answering what it answered last time) is not decoded."""
        reset_at = self.gate_closed_until(gate)
        if reset_at is not None:
            raise UpstreamRateLimited(
                f"rate limited until {format_reset(reset_at)}", reset_at=reset_at
            )
        send = partial(
            self._send, provider, method, url, gate, headers, params, expect_json, digest,
            known_digest,
        )  # fmt: skip
        if method != "GET":
            return await send()
        return await retry_call(send, self.retry, on=_is_retryable)

    async def _send(
        self,
        provider: str,
        method: str,
        url: str,
        gate: str,
        headers: Mapping[str, str] | None,
        params: Mapping[str, str] | None,
        expect_json: bool,
        digest: bool,
        known_digest: bytes | None,
    ) -> JsonReply:
        try:
            reply = await self.client.request(method, url, headers=headers, params=params)
        except UpstreamTimeout:
            self.on_response(provider, "timeout", {})
            raise
        except UpstreamTooLarge:
            self.on_response(provider, "too_large", {})
            raise
        except UpstreamUnreachable:
            self.on_response(provider, "connection", {})
            raise
        if self.turnstile is not None:
            await self.turnstile.turn()
        self.on_response(provider, str(reply.status_code), reply.headers)
        return self._decode(reply, gate, expect_json, digest, known_digest)

    def _decode(
        self,
        reply: Reply,
        gate: str,
        expect_json: bool,
        digest: bool,
        known_digest: bytes | None,
    ) -> JsonReply:
        status = reply.status_code
        reset_at = rate_limit_reset(status, reply.headers, self.clock())
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
            return JsonReply(status, reply.headers, None, reply.cookies)
        if status >= 300:
            raise UpstreamError(f"upstream {status}", status_code=status)
        seen = body_digest(reply.body) if digest else None
        if seen is not None and seen == known_digest:
            return JsonReply(status, reply.headers, None, reply.cookies, seen, is_unchanged=True)
        try:
            data = orjson.loads(reply.body)
            return JsonReply(status, reply.headers, data, reply.cookies, seen)
        except orjson.JSONDecodeError as exc:
            raise UpstreamBadPayload("invalid JSON", status_code=status) from exc


def _is_retryable(exc: BaseException) -> bool:
    """Broken connections and 502/503/504: worth one more GET. Never a timeout (the
    deadline is spent), a rate limit, an auth error or a bad payload."""
    if isinstance(exc, UpstreamUnreachable):
        return True
    if type(exc) is UpstreamError:
        return exc.status_code in _RETRYABLE_STATUS
    return False
