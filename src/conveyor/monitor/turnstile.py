"""A turnstile: tasks waiting at it pass one per event-loop iteration, in arrival order.

A sync tick keeps `concurrency` fetches in flight; when their answers come back together
(a fast upstream, all sent at once), handling them (JSON, validation, the entry) back to
back holds the loop for tens of milliseconds, and an API request that arrived meanwhile
waits behind all of them. Passing the turnstile before that work lets one answer through per
iteration; between two, the loop polls its sockets, so a request waits for at most one
answer's handling. Throughput is unchanged: the answers wait only while the loop is busy.
No I/O; one loop.
"""

from __future__ import annotations

import asyncio
from collections import deque

__all__ = ["Turnstile"]


class Turnstile:
    def __init__(self) -> None:
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._is_releasing = False

    async def turn(self) -> None:
        """Wait for this caller's turn: its own loop iteration, after every earlier caller."""
        loop = asyncio.get_running_loop()
        turn: asyncio.Future[None] = loop.create_future()
        self._waiting.append(turn)
        if not self._is_releasing:
            self._is_releasing = True
            loop.call_soon(self._release_one)
        await turn

    def _release_one(self) -> None:
        # A caller canceled while waiting (its tick's deadline) is skipped, not counted.
        while self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                break
        if self._waiting:
            asyncio.get_running_loop().call_soon(self._release_one)
        else:
            self._is_releasing = False
