"""Webhook deliveries into the store, a group commit per turn of the event loop.

A delivery either finds its id (or, given its `BodySeen`, its body within the window) seen
before (the answer is that delivery's first run id) or stores its new `pending` run;
deliveries arriving together are written in one transaction on the next turn of the loop,
and each new run is handed to `on_new` (the queue) in the same step, so a request that
gave up (a client that hung up) still gets its run queued. Written on the event loop, like
every store call of the engine: SQLite writes are short, and handing them to a thread cost
more (GIL hand-offs with a busy loop, writer threads waiting on each other's lock) than
they take.

Must not: decide what a run is (the queue builds it) nor execute anything.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from conveyor.errors import StoreError
from conveyor.model import RunRecord
from conveyor.store.base import BodySeen, Deliveries

__all__ = ["DeliveryIntake"]

log = structlog.get_logger(__name__)


class DeliveryIntake:
    """Group commit of webhook deliveries (module docstring)."""

    def __init__(self, store: Deliveries, on_new: Callable[[RunRecord], None]) -> None:
        self._store = store
        self._on_new = on_new
        self._batch: list[tuple[RunRecord, str, BodySeen | None, asyncio.Future[str | None]]] = []

    def record(
        self, run: RunRecord, delivery_id: str, body: BodySeen | None = None
    ) -> asyncio.Future[str | None]:
        """The first run id of a delivery (or body) seen before, else None once `run` is
        stored and handed on. The write happens on the next turn of the loop, with every
        delivery that arrived meanwhile."""
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._batch.append((run, delivery_id, body, future))
        if len(self._batch) == 1:
            future.get_loop().call_soon(self._flush)
        return future

    def _flush(self) -> None:
        batch, self._batch = self._batch, []
        try:
            answers = self._store.create_delivered_runs(
                [(run, d) for run, d, _, _ in batch], bodies=[b for _, _, b, _ in batch]
            )
        except Exception as exc:  # each request answers the error (503 for a StoreError)
            if not isinstance(exc, StoreError):
                log.error("queue.intake_failed", deliveries=len(batch), exc_info=True)
            for _, _, _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (run, _, _, future), existing in zip(batch, answers, strict=True):
            if existing is None:
                self._on_new(run)
            if not future.done():  # a request that gave up still gets its run queued
                future.set_result(existing)
