"""outbound.retry: the one retry policy (only named errors, backoff with jitter stretched to
Retry-After, caps on attempts and total time, the no-wait switch) and the one Retry-After
parser; driven by a scripted call and a recording sleep, no network, no waiting."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from conveyor.outbound.retry import OnRetry, RetryPolicy, parse_retry_after, retry_call

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
POLICY = RetryPolicy(max_attempts=4, initial_wait_s=1.0, max_wait_s=8.0, jitter_s=0.0)


class Flaky(Exception):
    def __init__(self, asked_s: float | None = None) -> None:
        super().__init__("flaky")
        self.asked_s = asked_s


class Script:
    """Raises the given errors in order, then returns "done"; counts calls."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


def asked_wait_s(error: BaseException) -> float | None:
    return error.asked_s if isinstance(error, Flaky) else None


async def run(
    script: Script, policy: RetryPolicy = POLICY, on_retry: OnRetry | None = None
) -> tuple[str, list[float]]:
    sleeps: list[float] = []

    async def record(seconds: float) -> None:
        sleeps.append(seconds)

    result = await retry_call(
        script, policy, on=Flaky, wait_hint=asked_wait_s, on_retry=on_retry, sleep=record
    )
    return result, sleeps


def test_parse_retry_after_seconds_and_date() -> None:
    assert parse_retry_after("7", now=NOW) == 7.0
    assert parse_retry_after("Mon, 23 Nov 2026 12:00:30 GMT", now=NOW) == 30.0
    assert parse_retry_after("Mon, 23 Nov 2026 11:00:00 GMT", now=NOW) == 0.0
    assert parse_retry_after("soon", now=NOW) is None
    assert parse_retry_after(None, now=NOW) is None


async def test_retry_call_backs_off_exponentially() -> None:
    script = Script(Flaky(), Flaky(), Flaky())
    assert await run(script) == ("done", [1.0, 2.0, 4.0])


async def test_retry_call_waits_at_least_what_the_upstream_asks() -> None:
    script = Script(Flaky(asked_s=5.0))
    assert await run(script) == ("done", [5.0])


async def test_retry_call_retries_only_named_errors() -> None:
    script = Script(ValueError("not named"))
    with pytest.raises(ValueError, match="not named"):
        await run(script)
    assert script.calls == 1


async def test_retry_call_caps_attempts_and_reraises_the_last_error() -> None:
    script = Script(*(Flaky() for _ in range(10)))
    with pytest.raises(Flaky):
        await run(script)
    assert script.calls == 4


async def test_retry_call_starts_no_wait_past_the_total_time() -> None:
    policy = RetryPolicy(max_attempts=10, max_total_s=3.0, initial_wait_s=1.0, jitter_s=0.0)
    script = Script(Flaky(asked_s=60.0))
    with pytest.raises(Flaky):
        await run(script, policy)
    assert script.calls == 1


async def test_retry_call_no_wait_switch_removes_waits() -> None:
    script = Script(Flaky(asked_s=30.0), Flaky())
    assert await run(script, RetryPolicy(should_wait=False)) == ("done", [0.0, 0.0])


async def test_retry_call_tells_on_retry_before_each_wait() -> None:
    seen: list[tuple[int, float, str]] = []
    script = Script(Flaky(), Flaky())
    await run(script, on_retry=lambda n, wait_s, e: seen.append((n, wait_s, str(e))))
    assert seen == [(1, 1.0, "flaky"), (2, 2.0, "flaky")]
