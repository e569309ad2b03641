"""How every notifier sends: JSON POSTs through the outbound client, retried by the policy.

Owns: the notify rules on top of conveyor.outbound (which owns timeouts, the body cap, the
retry engine and the Retry-After parser): retry on timeouts, broken connections, 5xx and 429
(waiting at least what `Retry-After` asks), what a final failure says (`github: upstream
502 after 5 attempts`, `slack: timed out after 2 attempts`), and the `notify.retry_scheduled`
log line. `CONVEYOR_NOTIFY_NO_WAIT` (read by notify/__init__) picks NO_WAIT, the test switch.
It owns nothing about GitHub, GitLab or Slack and never logs a URL, a header or a body: a
Slack webhook URL is itself a secret. Failures come out as UpstreamError subclasses whose
messages hold only the target name and a short sanitized reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime

import structlog

from conveyor.errors import (
    UpstreamAuthError,
    UpstreamBadPayload,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamTooLarge,
    UpstreamUnreachable,
)
from conveyor.outbound.base import ClientPolicy, HttpClient, Reply
from conveyor.outbound.client import OutboundClient
from conveyor.outbound.retry import RetryPolicy, retry_call

__all__ = ["Poster", "notify_policy"]

log = structlog.get_logger(__name__)

TIMEOUT_S = 10.0
MAX_BODY_BYTES = 1024 * 1024  # what GitHub, GitLab or Slack answers is small; it is not read


def notify_policy(timeout_s: float = TIMEOUT_S) -> ClientPolicy:
    """The notifiers' client: a deadline of timeout_s per attempt, no redirects, the
    environment's proxy settings applied."""
    return ClientPolicy(
        timeout_s=timeout_s,
        max_body_bytes=MAX_BODY_BYTES,
        max_redirects=0,
        headers={"User-Agent": "conveyor"},
    )


class _Retryable(Exception):
    """An answer worth another attempt (5xx, 429); carries what the last answer said."""

    def __init__(self, status_code: int, retry_after_s: float | None) -> None:
        super().__init__(f"upstream {status_code}")
        self.status_code = status_code
        self.retry_after_s = retry_after_s


def _asked_wait_s(error: BaseException) -> float | None:
    return error.retry_after_s if isinstance(error, _Retryable) else None


def _check(reply: Reply, target: str, now: datetime) -> None:
    """Raise for an answer that is not 2xx: _Retryable for 5xx/429, UpstreamError otherwise."""
    code = reply.status_code
    if code < 300:
        return
    if code == 429 or code >= 500:
        raise _Retryable(code, reply.retry_after_s(now))
    if code in (401, 403):
        raise UpstreamAuthError(
            f"{target}: upstream {code} (check the token named in conveyor.toml)", status_code=code
        )
    raise UpstreamError(f"{target}: upstream {code}", status_code=code)


def _final_error(error: BaseException, target: str, attempts: int) -> UpstreamError:
    tries = f"after {attempts} attempt{'s' if attempts != 1 else ''}"
    if isinstance(error, _Retryable):
        if error.status_code == 429:
            return UpstreamRateLimited(
                f"{target}: upstream 429 {tries}", reset_at=None, status_code=429
            )
        return UpstreamError(
            f"{target}: upstream {error.status_code} {tries}", status_code=error.status_code
        )
    if isinstance(error, UpstreamTimeout):
        return UpstreamTimeout(f"{target}: timed out {tries}")
    if isinstance(error, UpstreamUnreachable):
        return UpstreamError(f"{target}: {error.cause} {tries}")
    return UpstreamBadPayload(f"{target}: response too large")


class Poster:
    """Posts JSON for the notifiers; `aclose()` when done. `client` (default: an
    OutboundClient with notify_policy(timeout_s)), `sleep` and `clock` are seams for tests."""

    def __init__(
        self,
        retry: RetryPolicy,
        *,
        timeout_s: float = TIMEOUT_S,
        client: HttpClient | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.retry = retry
        self.client = OutboundClient(notify_policy(timeout_s)) if client is None else client
        self._sleep = sleep
        self._clock = clock

    async def post_json(
        self,
        url: str,
        body: Mapping[str, object],
        *,
        headers: Mapping[str, str],
        target: str,
        log_fields: Mapping[str, object],
    ) -> Reply:
        """POST `body` as JSON, retrying per the policy. Raises UpstreamError (sanitized)."""
        attempts = 0

        async def attempt() -> Reply:
            nonlocal attempts
            attempts += 1
            reply = await self.client.request("POST", url, json=dict(body), headers=headers)
            _check(reply, target, self._clock())
            return reply

        def scheduled(attempt_number: int, wait_s: float, error: BaseException) -> None:
            log.info(
                "notify.retry_scheduled",
                target=target,
                attempt=attempt_number,
                wait_s=round(wait_s, 3),
                **log_fields,
            )

        try:
            return await retry_call(
                attempt,
                self.retry,
                on=(_Retryable, UpstreamTimeout, UpstreamUnreachable),
                wait_hint=_asked_wait_s,
                on_retry=scheduled,
                sleep=self._sleep,
            )
        except (_Retryable, UpstreamTimeout, UpstreamUnreachable, UpstreamTooLarge) as error:
            raise _final_error(error, target, attempts) from None

    async def aclose(self) -> None:
        await self.client.aclose()
