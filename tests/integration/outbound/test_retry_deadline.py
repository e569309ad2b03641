"""outbound.retry's total deadline on a real event loop: a call that never finishes is cut
at max_total_s and reported as UpstreamTimeout."""

from __future__ import annotations

import asyncio

import pytest

from conveyor.errors import UpstreamTimeout
from conveyor.outbound.retry import RetryPolicy, retry_call


async def test_retry_call_total_deadline_is_an_upstream_timeout() -> None:
    async def never() -> None:
        await asyncio.Event().wait()

    with pytest.raises(UpstreamTimeout, match=r"^timeout after 0.05s$"):
        await retry_call(never, RetryPolicy(max_total_s=0.05), on=UpstreamTimeout)
