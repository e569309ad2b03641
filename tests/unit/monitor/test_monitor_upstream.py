"""The monitor's upstream calls (typed against the HttpClient protocol) over OutboundClient and
httpx.MockTransport (in memory): failures become sanitized UpstreamErrors, rate limits close
a gate, safe GETs are retried, bodies are capped."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from conveyor.errors import (
    UpstreamAuthError,
    UpstreamBadPayload,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
)
from conveyor.monitor.upstream import Upstream, monitor_policy, rate_limit_reset, retry_policy
from conveyor.outbound.client import OutboundClient

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _upstream(handler: Callable[[httpx.Request], httpx.Response]) -> tuple[Upstream, list[str]]:
    codes: list[str] = []
    policy = monitor_policy(2, timeout_s=8, max_body_bytes=4096)
    client = OutboundClient(policy, transport=httpx.MockTransport(handler))
    upstream = Upstream(
        client,
        clock=lambda: NOW,
        on_response=lambda provider, code, headers: codes.append(code),
        retry=retry_policy(8, 0),
    )
    return upstream, codes


async def _get(upstream: Upstream) -> object:
    reply = await upstream.request("github", "GET", "https://api.example/x", gate="gh")
    return reply.data


@pytest.mark.parametrize(
    ("response", "error", "reason"),
    [
        ((502, b""), UpstreamError, "upstream 502"),
        ((404, b""), UpstreamError, "upstream 404"),
        ((401, b""), UpstreamAuthError, "upstream 401 (check the target's token)"),
        ((200, b"<html>"), UpstreamBadPayload, "invalid JSON"),
        ((200, b"[" * 5000), UpstreamBadPayload, "response too large"),
    ],
)
async def test_request_failures_are_sanitized(
    response: tuple[int, bytes], error: type[UpstreamError], reason: str
) -> None:
    upstream, _ = _upstream(lambda request: httpx.Response(response[0], content=response[1]))
    with pytest.raises(error) as caught:
        await _get(upstream)
    assert reason == caught.value.reason


async def test_request_timeout_names_the_deadline() -> None:
    def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    upstream, codes = _upstream(hang)
    with pytest.raises(UpstreamTimeout, match=r"^timeout after 8s$"):
        await _get(upstream)
    assert codes == ["timeout"]


async def test_request_retries_a_502_get_once() -> None:
    answers = iter([httpx.Response(502), httpx.Response(200, json=[1])])
    upstream, codes = _upstream(lambda request: next(answers))
    assert await _get(upstream) == [1]
    assert codes == ["502", "200"]


async def test_request_never_retries_a_post() -> None:
    upstream, codes = _upstream(lambda request: httpx.Response(503))
    with pytest.raises(UpstreamError):
        await upstream.request("gitlab", "POST", "https://x.example/p", gate="gl")
    assert codes == ["503"]


async def test_rate_limit_closes_the_gate_until_reset() -> None:
    upstream, codes = _upstream(lambda r: httpx.Response(429, headers={"Retry-After": "90"}))
    with pytest.raises(UpstreamRateLimited) as first:
        await _get(upstream)
    with pytest.raises(UpstreamRateLimited) as second:
        await _get(upstream)
    assert "rate limited until 2026-11-23T12:01:30Z" == first.value.reason == second.value.reason
    assert codes == ["429"]


async def test_304_has_no_data() -> None:
    upstream, _ = _upstream(lambda request: httpx.Response(304))
    assert await _get(upstream) is None


def test_rate_limit_reset_reads_github_headers() -> None:
    epoch = str(int((NOW + timedelta(minutes=5)).timestamp()))
    headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": epoch}
    assert NOW + timedelta(minutes=5) == rate_limit_reset(403, headers, NOW)
    assert rate_limit_reset(403, {"x-ratelimit-remaining": "7"}, NOW) is None
    assert rate_limit_reset(200, headers, NOW) is None


def test_rate_limit_reset_is_capped_and_defaults() -> None:
    assert NOW + timedelta(hours=1) == rate_limit_reset(429, {"retry-after": "999999"}, NOW)
    assert NOW + timedelta(seconds=60) == rate_limit_reset(429, {}, NOW)
    http_date = {"retry-after": "Mon, 23 Nov 2026 12:02:00 GMT"}
    assert NOW + timedelta(minutes=2) == rate_limit_reset(429, http_date, NOW)


async def test_a_body_with_the_known_digest_is_not_decoded_again() -> None:
    bodies = iter([b'{"builds": [1]}', b'{"builds": [1]}', b'{"builds": [2]}'])
    upstream, codes = _upstream(lambda request: httpx.Response(200, content=next(bodies)))

    async def get(known: bytes | None) -> tuple[object, bytes | None, bool]:
        reply = await upstream.request(
            "jenkins", "GET", "https://ci.example/x", gate="j", digest=True, known_digest=known
        )
        return reply.data, reply.digest, reply.is_unchanged

    first = await get(None)
    assert (first[0], first[2]) == ({"builds": [1]}, False)
    assert first[1] is not None and len(first[1]) == 16
    assert await get(first[1]) == (None, first[1], True)  # the same bytes: not parsed
    changed = await get(first[1])
    assert (changed[0], changed[2]) == ({"builds": [2]}, False)
    assert changed[1] not in (None, first[1])
    assert codes == ["200", "200", "200"]


async def test_without_digest_asked_for_there_is_none() -> None:
    upstream, _ = _upstream(lambda request: httpx.Response(200, json=[1]))
    reply = await upstream.request("github", "GET", "https://api.example/x", gate="gh")
    assert (reply.data, reply.digest, reply.is_unchanged) == ([1], None, False)
