"""The bytes of `GET /api/v1/runs/{run_id}`, the runs API's hottest read, and their caches.

`RunReads` is shared by the route (`server.runs`) and, for a store whose reads are local
(`RunRecords.local_reads`: SQLite, never blocked by a writer in WAL mode), the app's fast path
in front of the routing (`read_local`: same checks, same bytes). It keeps the bytes of the
last records served (the store hands back the same immutable record object while a run has
not changed) and, in `FinishedRuns`, the bytes of runs that ended: a final run changes only
when one of its manual jobs is played (cancel refuses it, recovery only touches runs that are
still running), and the play route forgets its bytes — including bytes of the old record
that a read in flight would offer afterwards. Must not write to the store or run anything.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
from starlette.types import Scope

from conveyor.model import RunRecord, Status
from conveyor.records import run_to_dict
from conveyor.server.errors import ApiError
from conveyor.server.middleware import FastReads, require_read_scope
from conveyor.store.base import RunRecords
from conveyor.store.paths import is_valid_run_id

__all__ = ["RUN_PREFIX", "FinishedRuns", "RunReads", "run_not_found"]

_SERVED_RUNS = 256
RUN_PREFIX = "/api/v1/runs/"


class FinishedRuns:
    """The serialized records of runs that ended, by run id (at most `size`, oldest out).

    Only a run that ended at least `settle` ago is kept: its record no longer changes, and
    the margin covers a job record written in the same instant as the run's final status."""

    def __init__(self, size: int = 1024, settle: timedelta = timedelta(seconds=2)) -> None:
        self._size = size
        self._settle = settle
        self._bodies: dict[str, bytes] = {}
        self._reopened: dict[str, datetime] = {}  # run id -> when a play reopened it

    def get(self, run_id: str) -> bytes | None:
        return self._bodies.get(run_id)

    def forget(self, run_id: str, now: datetime) -> None:
        """Drop the run's bytes: it is running again (a manual job was played). A record
        that ended before `now` is not kept again; the resumed run's final one will be."""
        self._bodies.pop(run_id, None)
        if len(self._reopened) >= self._size:
            del self._reopened[next(iter(self._reopened))]
        self._reopened[run_id] = now

    def offer(self, run: RunRecord, body: bytes, now: datetime) -> None:
        """Keep `body` if `run` ended long enough ago (a MANUAL run waits to be played)."""
        ended = run.finished_at
        if not run.status.is_final or run.status is Status.MANUAL or ended is None:
            return
        if now - ended < self._settle:
            return
        reopened = self._reopened.get(run.run_id)
        if reopened is not None and ended <= reopened:
            return
        if len(self._bodies) >= self._size:
            del self._bodies[next(iter(self._bodies))]
        self._bodies[run.run_id] = body


def run_not_found(run_id: str) -> ApiError:
    return ApiError(
        404, "run_not_found", f"Run {run_id!r} does not exist (list runs with GET /api/v1/runs)."
    )


class RunReads:
    """The bytes of `GET /api/v1/runs/{run_id}`, shared by the route and, for a store whose
    reads are local, the app's fast path (`fast_reads`): a final run's bytes come from
    `finished`; the bytes of the last records served are kept by run id (the store hands
    back the same immutable record object while the run has not changed, so identity is
    the test)."""

    def __init__(self) -> None:
        self.finished = FinishedRuns()
        self._served: dict[str, tuple[RunRecord, bytes]] = {}

    def body_of(self, run: RunRecord) -> bytes:
        last = self._served.get(run.run_id)
        if last is not None and last[0] is run:
            body = last[1]
        else:
            body = orjson.dumps(run_to_dict(run))
            if len(self._served) >= _SERVED_RUNS:
                self._served.clear()
            self._served[run.run_id] = (run, body)
        self.finished.offer(run, body, datetime.now(UTC))
        return body

    def read_local(self, scope: Scope) -> bytes:
        """The fast read (`middleware.FastRead`) of `/api/v1/runs/{run_id}`: the route's
        checks and bytes, the store read on the event loop (only for `local_reads`)."""
        require_read_scope(scope)
        run_id = str(scope["path"])[len(RUN_PREFIX) :]
        body = self.finished.get(run_id)
        if body is not None:
            return body
        if not is_valid_run_id(run_id):
            raise run_not_found(run_id)
        store: RunRecords = scope["app"].state.store
        run = store.get_run(run_id)
        if run is None:
            raise run_not_found(run_id)
        return self.body_of(run)

    def fast_reads(self) -> FastReads:
        """`GET /api/v1/runs/{run_id}` for the app's fast path (a store with local reads)."""
        return FastReads(segments=((RUN_PREFIX, self.read_local),))
