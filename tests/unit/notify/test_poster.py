"""The notifiers' posting policy over the real outbound client, driven through
httpx.MockTransport and a recording sleep."""

from __future__ import annotations

import httpx
import pytest

from conveyor.errors import UpstreamAuthError, UpstreamError, UpstreamRateLimited, UpstreamTimeout
from conveyor.notify.poster import Poster, notify_policy
from conveyor.outbound.base import Reply
from conveyor.outbound.client import OutboundClient
from conveyor.outbound.retry import RetryPolicy

POLICY = RetryPolicy(max_attempts=4, initial_wait_s=1.0, max_wait_s=8.0, jitter_s=0.0)


class Script:
    """Answers a list of responses (or exceptions) in order and counts calls."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def make_http(script: Script, policy: RetryPolicy = POLICY) -> tuple[Poster, list[float]]:
    sleeps: list[float] = []

    async def record(seconds: float) -> None:
        sleeps.append(seconds)

    client = OutboundClient(notify_policy(), transport=httpx.MockTransport(script))
    return Poster(policy, client=client, sleep=record), sleeps


async def post(http: Poster) -> Reply:
    try:
        return await http.post_json(
            "http://sink.test/x", {"a": 1}, headers={}, target="github", log_fields={}
        )
    finally:
        await http.aclose()


async def test_post_json_retries_5xx_then_succeeds() -> None:
    script = Script(httpx.Response(502), httpx.Response(503), httpx.Response(201))
    http, sleeps = make_http(script)
    response = await post(http)
    assert (response.status_code, script.calls, sleeps) == (201, 3, [1.0, 2.0])


async def test_post_json_honours_retry_after_over_backoff() -> None:
    script = Script(httpx.Response(429, headers={"Retry-After": "5"}), httpx.Response(200))
    http, sleeps = make_http(script)
    await post(http)
    assert sleeps == [5.0]


async def test_post_json_caps_attempts_and_reports_rate_limit() -> None:
    script = Script(httpx.Response(429))
    http, _ = make_http(script)
    with pytest.raises(UpstreamRateLimited, match="github: upstream 429 after 4 attempts"):
        await post(http)
    assert script.calls == 4


async def test_post_json_gives_up_when_next_wait_passes_total_time() -> None:
    policy = RetryPolicy(max_attempts=10, max_total_s=3.0, initial_wait_s=1.0, jitter_s=0.0)
    script = Script(httpx.Response(500, headers={"Retry-After": "60"}))
    http, sleeps = make_http(script, policy)
    with pytest.raises(UpstreamError, match="upstream 500 after 1 attempt"):
        await post(http)
    assert sleeps == []


async def test_post_json_retries_timeouts() -> None:
    script = Script(httpx.ReadTimeout("slow"))
    http, _ = make_http(script)
    with pytest.raises(UpstreamTimeout, match="github: timed out after 4 attempts"):
        await post(http)


async def test_post_json_does_not_retry_auth_errors() -> None:
    script = Script(httpx.Response(401))
    http, _ = make_http(script)
    with pytest.raises(UpstreamAuthError):
        await post(http)
    assert script.calls == 1


async def test_no_wait_switch_removes_waits() -> None:
    script = Script(httpx.Response(429, headers={"Retry-After": "30"}), httpx.Response(200))
    http, sleeps = make_http(script, RetryPolicy(should_wait=False))
    await post(http)
    assert sleeps == [0.0]


async def test_connection_error_message_holds_no_url() -> None:
    script = Script(httpx.ConnectError("boom http://sink.test/x?token=abc"))
    http, _ = make_http(script, RetryPolicy(max_attempts=1))
    with pytest.raises(UpstreamError) as caught:
        await post(http)
    assert "sink.test" not in str(caught.value)
