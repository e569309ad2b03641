"""The outgoing-call policy every notifier shares: one httpx.AsyncClient, explicit timeouts,
retries with exponential backoff and jitter on timeouts, connection errors, 5xx and 429
(honouring `Retry-After`), a cap on attempts AND on total time, and a switch that removes
every wait in tests (stamina's rules on tenacity).

It owns nothing about GitHub, GitLab or Slack and never logs a URL, a header or a body:
a Slack webhook URL is itself a secret. Failures come out as UpstreamError subclasses whose
messages hold only the target name and a short sanitized reason.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx
import structlog
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential_jitter,
)

from conveyor.errors import (
    UpstreamAuthError,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
)

__all__ = ["NO_WAIT", "OutgoingHttp", "RetryPolicy", "parse_retry_after"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try one outgoing call.

    timeout_s bounds each network operation of an attempt; max_total_s bounds the whole call
    (attempts and waits together); should_wait=False is the test switch: retries happen at
    once, Retry-After included, so a test of five failures takes milliseconds.
    """

    timeout_s: float = 10.0
    max_attempts: int = 5
    max_total_s: float = 60.0
    initial_wait_s: float = 0.5
    max_wait_s: float = 10.0
    jitter_s: float = 0.5
    should_wait: bool = True


NO_WAIT = RetryPolicy(timeout_s=2.0, max_total_s=10.0, should_wait=False)


class _Retryable(Exception):
    """An answer worth another attempt (5xx, 429); carries what the last answer said."""

    def __init__(self, status_code: int, retry_after_s: float | None) -> None:
        super().__init__(f"upstream {status_code}")
        self.status_code = status_code
        self.retry_after_s = retry_after_s


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP-date); None when
    absent or unreadable. Never negative."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class _Wait:
    """Exponential backoff with jitter, stretched to what Retry-After asks for."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy
        self._backoff = wait_exponential_jitter(
            multiplier=policy.initial_wait_s, max=policy.max_wait_s, jitter=policy.jitter_s
        )

    def __call__(self, state: RetryCallState) -> float:
        if not self._policy.should_wait:
            return 0.0
        wait_s = float(self._backoff(state))
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, _Retryable) and error.retry_after_s is not None:
            wait_s = max(wait_s, error.retry_after_s)
        return wait_s


def _classify(response: httpx.Response, target: str) -> None:
    """Raise for an answer that is not 2xx: _Retryable for 5xx/429, UpstreamError otherwise."""
    code = response.status_code
    if code < 300:
        return
    if code == 429 or code >= 500:
        retry_after = parse_retry_after(response.headers.get("retry-after"), now=datetime.now(UTC))
        raise _Retryable(code, retry_after)
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
    if isinstance(error, httpx.TimeoutException | TimeoutError):
        return UpstreamTimeout(f"{target}: timed out {tries}")
    # httpx.TransportError: the message may hold host details, so only its class is named.
    return UpstreamError(f"{target}: {type(error).__name__} {tries}")


class OutgoingHttp:
    """One lazily created httpx.AsyncClient plus the retry policy; `aclose()` when done.

    Create it anywhere; the client is made on first use inside the running event loop.
    `transport` and `sleep` are seams for tests (httpx.MockTransport, a recording sleep).
    """

    def __init__(
        self,
        policy: RetryPolicy = RetryPolicy(),
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.policy = policy
        self._transport = transport
        self._sleep = sleep
        self._client: httpx.AsyncClient | None = None
        # httpx logs every request URL at INFO; a Slack webhook URL is a secret.
        logging.getLogger("httpx").setLevel(logging.WARNING)

    def _get_client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.policy.timeout_s),
                follow_redirects=False,
                transport=self._transport,
                headers={"User-Agent": "conveyor"},
            )
        return self._client

    async def post_json(
        self,
        url: str,
        body: Mapping[str, object],
        *,
        headers: Mapping[str, str],
        target: str,
        log_fields: Mapping[str, object],
    ) -> httpx.Response:
        """POST `body` as JSON, retrying per the policy. Raises UpstreamError (sanitized)."""
        policy = self.policy
        client = self._get_client()
        retrying = AsyncRetrying(
            stop=stop_after_attempt(policy.max_attempts) | stop_before_delay(policy.max_total_s),
            wait=_Wait(policy),
            sleep=self._sleep,
            retry=retry_if_exception_type((_Retryable, httpx.TransportError)),
            before_sleep=lambda state: log.info(
                "notify.retry_scheduled",
                target=target,
                attempt=state.attempt_number,
                wait_s=round(state.upcoming_sleep, 3),
                **log_fields,
            ),
            reraise=True,
        )
        attempts = 0

        async def attempt() -> httpx.Response:
            nonlocal attempts
            attempts += 1
            response = await client.post(url, json=dict(body), headers=dict(headers))
            _classify(response, target)
            return response

        try:
            async with asyncio.timeout(policy.max_total_s):
                return await retrying(attempt)
        except (_Retryable, httpx.TransportError, TimeoutError) as error:
            raise _final_error(error, target, attempts) from None

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
