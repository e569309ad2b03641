"""The turnstile lets waiting tasks through one per event-loop iteration, in arrival order,
skipping a waiter that was canceled."""

from __future__ import annotations

import asyncio
import itertools

from conveyor.monitor.turnstile import Turnstile


async def _count_iterations(passed: list[int], seen: list[int], until: asyncio.Event) -> None:
    """What `passed` holds at each loop iteration."""
    while not until.is_set():
        seen.append(len(passed))
        await asyncio.sleep(0)


async def test_waiters_pass_one_per_iteration_in_order() -> None:
    turnstile = Turnstile()
    passed: list[int] = []
    seen: list[int] = []
    done = asyncio.Event()

    async def waiter(number: int) -> None:
        await turnstile.turn()
        passed.append(number)

    counter = asyncio.create_task(_count_iterations(passed, seen, done))
    await asyncio.gather(*(waiter(n) for n in range(6)))
    done.set()
    await counter
    assert passed == [0, 1, 2, 3, 4, 5]
    steps = [b - a for a, b in itertools.pairwise(seen)]
    assert max(steps) == 1, seen  # never two through in one iteration


async def test_a_canceled_waiter_is_skipped_and_the_rest_pass() -> None:
    turnstile = Turnstile()
    passed: list[str] = []

    async def waiter(name: str) -> None:
        await turnstile.turn()
        passed.append(name)

    first = asyncio.create_task(waiter("first"))
    canceled = asyncio.create_task(waiter("canceled"))
    last = asyncio.create_task(waiter("last"))
    await asyncio.sleep(0)  # all three wait now
    canceled.cancel()
    await asyncio.gather(first, last)
    assert passed == ["first", "last"]
    assert canceled.cancelled()


async def test_a_lone_waiter_passes_at_once_and_the_turnstile_is_reusable() -> None:
    turnstile = Turnstile()
    for _ in range(3):
        await asyncio.wait_for(turnstile.turn(), timeout=1)
