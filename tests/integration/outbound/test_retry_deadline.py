"""outbound.retry's total deadline on a real event loop: once a call is retried, an attempt
that never finishes is cut at max_total_s (counted from the first attempt) and reported as
UpstreamTimeout."""

from __future__ import annotations

import asyncio

import pytest

from conveyor.errors import UpstreamTimeout, UpstreamUnreachable
from conveyor.outbound.retry import RetryPolicy, retry_call


async def test_retry_call_total_deadline_is_an_upstream_timeout() -> None:
    calls = 0

    async def broken_then_hung() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise UpstreamUnreachable("connection failed", cause="ConnectError")
        await asyncio.Event().wait()

    policy = RetryPolicy(max_total_s=0.05, should_wait=False)
    with pytest.raises(UpstreamTimeout, match=r"^timeout after 0.05s$"):
        await retry_call(broken_then_hung, policy, on=UpstreamUnreachable)
    assert calls == 2
