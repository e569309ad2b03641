"""The one retry policy of outbound calls, and the one `Retry-After` parser.

Owns: `retry_call`, stamina's rules on tenacity: retry only on the exceptions the caller
names (`on`: classes or a predicate), exponential backoff with jitter, stretched to what the
answer's `Retry-After` asks for when the caller reads it (`wait_hint`), a cap on attempts
AND on total time (no wait that would pass `max_total_s` is started, and a retried call runs
under that deadline), and `should_wait=False`, the test switch that removes every wait.
`parse_retry_after` reads delta-seconds or an HTTP-date; monitor and notify both use it.
Must not: know HTTP clients or upstreams, log (callers log through `on_retry`), or sleep
other than through the `sleep` it is given.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential_jitter,
)

from conveyor.errors import UpstreamTimeout

__all__ = ["NO_WAIT", "OnRetry", "RetryPolicy", "WaitHint", "parse_retry_after", "retry_call"]

T = TypeVar("T")
# exception -> seconds the upstream asked to wait (Retry-After), None when it did not say.
WaitHint = Callable[[BaseException], float | None]
# (attempt number that failed, seconds until the next one, its error) before each wait.
OnRetry = Callable[[int, float, BaseException], None]
Retryable = type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try one call: at most max_attempts, within max_total_s (attempts and
    waits together); waits grow from initial_wait_s by doubling up to max_wait_s, plus up
    to jitter_s at random. should_wait=False is the test switch: retries happen at once,
    Retry-After included, so a test of five failures takes milliseconds."""

    max_attempts: int = 5
    max_total_s: float = 60.0
    initial_wait_s: float = 0.5
    max_wait_s: float = 10.0
    jitter_s: float = 0.5
    should_wait: bool = True


NO_WAIT = RetryPolicy(max_total_s=10.0, should_wait=False)


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP-date, a date
    without a zone read as UTC); None when absent or unreadable. Never negative."""
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
    """Exponential backoff with jitter, stretched to what the upstream asks for."""

    def __init__(self, policy: RetryPolicy, wait_hint: WaitHint | None) -> None:
        self._policy = policy
        self._wait_hint = wait_hint
        self._backoff = wait_exponential_jitter(
            multiplier=policy.initial_wait_s, max=policy.max_wait_s, jitter=policy.jitter_s
        )

    def __call__(self, state: RetryCallState) -> float:
        if not self._policy.should_wait:
            return 0.0
        wait_s = float(self._backoff(state))
        error = state.outcome.exception() if state.outcome else None
        asked_s = None if error is None or self._wait_hint is None else self._wait_hint(error)
        return wait_s if asked_s is None else max(wait_s, asked_s)


def _predicate(on: Retryable) -> Callable[[BaseException], bool]:
    if isinstance(on, (type, tuple)):
        classes = on
        return lambda error: isinstance(error, classes)
    return on


async def retry_call(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    on: Retryable,
    wait_hint: WaitHint | None = None,
    on_retry: OnRetry | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """`await call()` until it returns; retry only when its error is one `on` names.

    The last error is raised as it is once the attempts are used up or the next wait would
    pass `max_total_s`; UpstreamTimeout when a retried call as a whole passes `max_total_s`.
    The first attempt is bounded by the call's own deadline (the client's); the total
    deadline is armed when the first retry is scheduled, so a call that succeeds at once
    pays no timer for it (the monitor sends thousands of such GETs per tick). Nor does it
    pay for tenacity (about 0.1 ms a call): the first attempt runs on its own, and only its
    retryable failure starts tenacity, whose first attempt raises that same error again.
    """
    started = asyncio.get_running_loop().time()
    is_retryable = _predicate(on)
    try:
        return await call()
    except BaseException as error:
        if policy.max_attempts > 1 and is_retryable(error):
            failed = [error]
        elif isinstance(error, TimeoutError):  # as the tenacity path below answers it
            raise UpstreamTimeout(f"timeout after {policy.max_total_s:g}s") from None
        else:
            raise

    async def call_again() -> T:
        if failed:
            raise failed.pop()  # the first attempt's failure, replayed to tenacity
        return await call()

    deadline: asyncio.Timeout | None = None

    def before_sleep(state: RetryCallState) -> None:
        if deadline is not None and deadline.when() is None:
            deadline.reschedule(started + policy.max_total_s)
        error = state.outcome.exception() if state.outcome else None
        if on_retry is not None and error is not None:
            on_retry(state.attempt_number, state.upcoming_sleep, error)

    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.max_attempts) | stop_before_delay(policy.max_total_s),
        wait=_Wait(policy, wait_hint),
        sleep=sleep,
        retry=retry_if_exception(is_retryable),
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        async with asyncio.timeout(None) as deadline:
            async for attempt in retrying:
                with attempt:
                    return await call_again()
    except TimeoutError:
        raise UpstreamTimeout(f"timeout after {policy.max_total_s:g}s") from None
    raise AssertionError("unreachable: tenacity reraises the last error")  # pragma: no cover
