"""The runs API: list, show, trigger, cancel, retry, play manual jobs, retry failed jobs,
read and follow job logs.

`build_router()` returns the APIRouter that `server.app.create_app` mounts. Handlers read
`app.state.store` (its RunRecords, sync, called through `asyncio.to_thread`),
`app.state.queue` (trigger/cancel/play) and `app.state.home` (run folders, whose JSONL logs
they read through a `store.logreader.LogFileReader`); they raise ApiError for every
refusal, which the app renders as the one error envelope. Serialisation
lives in `server.serialize`; the SSE wire format in `server.sse`. Must not run jobs or talk
to the network.

Playing a manual job runs it in the same run, as in GitLab (`server.queue.RunQueue.play`):
202 with the run's record and `Location: /api/v1/runs/{run_id}`. Retrying a failed or
canceled job does too (`RunQueue.retry`): its next attempt, then the jobs after it that
never ran; retrying the *run* (`/runs/{id}/retry`) makes a new run. A log can be followed
before the run is planned: while a run is queued any job name is accepted, and the stream
waits.

`GET /runs/{run_id}`, the API's hottest read, checks the read token in the handler (no
dependency to solve); its bytes and their caches live in `server.runreads.RunReads`, shared
with the app's fast path. The play route makes it forget a finished run's bytes.

Job names travel in paths URL-encoded (`test%20%5BPY%3D3.12%5D`, `deploy%2Fprod`): the
`{job:path}` parameter receives them decoded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NamedTuple, Protocol

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from conveyor.engine.resume import RETRYABLE, check_not_canceled
from conveyor.errors import ConflictError, GitError, RunCanceled, RunEnding
from conveyor.inputs import check_ref, check_variable_names
from conveyor.model import Event, EventKind, RunRecord, Status
from conveyor.runs.queue import Queued
from conveyor.server.auth import require_read, require_write
from conveyor.server.errors import ApiError
from conveyor.server.runreads import RUN_PREFIX, FinishedRuns, RunReads, run_not_found
from conveyor.server.serialize import json_response, run_page, threaded_chunks
from conveyor.server.sse import SSE_HEADERS, stream_job_log
from conveyor.settings import Settings
from conveyor.store.base import LogReader, RunRecords
from conveyor.store.logreader import LogFileReader
from conveyor.store.paths import is_valid_run_id, run_dir
from conveyor.suggest import closest_name
from conveyor.triggers import event_from_trigger

__all__ = [
    "LOG_OFFSET_HEADER",
    "RUN_PREFIX",
    "FinishedRuns",
    "RunQueue",
    "RunReads",
    "TriggerBody",
    "build_router",
    "job_outcome",
]

_VAR_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
# Past any real history, and far below what the store's integers hold (an offset beyond
# 2**63 made SQLite raise OverflowError: a 500).
MAX_OFFSET = 1_000_000_000
_MAX_EVENT_ID_DIGITS = 18
#: The byte offset a log's JSONL answer ends at (`?follow=1&offset=` goes on from there).
LOG_OFFSET_HEADER = "X-Log-Offset"
MAX_LOG_OFFSET = 1 << 62
_JSON = "application/json"


class RunQueue(Protocol):
    """What the routes need from the server's run queue (server.queue implements it)."""

    async def trigger(
        self,
        repo: str,
        ref: str,
        sha: str | None,
        variables: Mapping[str, str],
        kind: EventKind,
    ) -> RunRecord: ...

    async def cancel(self, run_id: str) -> bool: ...

    async def play(self, run_id: str, job: str) -> RunRecord | None:
        """Play `job` in run `run_id` and return the run's record; None for an unknown run;
        ConflictError when `job` is not a manual job waiting in that run."""
        ...

    async def retry(self, run_id: str, job: str) -> RunRecord | None:
        """Retry failed or canceled `job` in run `run_id` and return the run's record; None
        for an unknown run; ConflictError when the job or the run does not allow it."""
        ...

    async def enqueue(self, event: Event, *, play: Sequence[str] = ()) -> Queued: ...


class TriggerBody(BaseModel):
    """`POST /api/v1/runs`."""

    model_config = ConfigDict(extra="forbid")

    repo: str = Field(min_length=1, max_length=200)
    ref: str = Field(min_length=1, max_length=255)
    sha: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{7,64}$")
    variables: dict[Annotated[str, Field(pattern=_VAR_NAME)], str] = {}
    event: EventKind = EventKind.MANUAL


def _store(request: Request) -> RunRecords:
    store: RunRecords = request.app.state.store
    return store


def _queue(request: Request) -> RunQueue:
    queue: RunQueue | None = getattr(request.app.state, "queue", None)
    if queue is None:
        raise ApiError(503, "queue_unavailable", "The run queue is not running; try again later.")
    return queue


def _logs(request: Request, run_id: str) -> LogReader:
    home: Path = request.app.state.home
    return LogFileReader(run_dir(home, run_id))


async def _get_run(request: Request, run_id: str) -> RunRecord:
    if not is_valid_run_id(run_id):
        raise run_not_found(run_id)
    store = _store(request)
    if store.local_reads:
        run = store.get_run(run_id)
    else:
        run = await asyncio.to_thread(store.get_run, run_id)
    if run is None:
        raise run_not_found(run_id)
    return run


def _check_job(run: RunRecord, job: str, logs: LogReader) -> None:
    """404 unless the run has (or, still planning, may get) a job of that name."""
    names = [j.name for j in run.jobs]
    if job in names or logs.has_log(job):
        return
    if not names and not run.status.is_final:
        return  # queued: the plan, and so the job names, are not known yet
    hint = closest_name(job, names)
    raise ApiError(
        404,
        "job_not_found",
        f"Run {run.run_id!r} has no job {job!r}"
        + (f" (did you mean {hint!r}?)" if hint else f" (its jobs: {', '.join(names) or 'none'})"),
    )


async def list_runs(
    request: Request,
    repo: str | None = None,
    ref: str | None = None,
    status: Status | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Response:
    """Newest first. `next_offset` is null on the last page."""
    runs = await asyncio.to_thread(
        _store(request).list_runs, repo=repo, ref=ref, status=status, limit=limit + 1, offset=offset
    )
    return json_response(run_page(runs, limit=limit, offset=offset))


def _get_run_route(reads: RunReads) -> Callable[[Request, str], Any]:
    async def get_run(request: Request, run_id: str) -> Response:
        """The run record (DESIGN.md); a final run's bytes come from `finished`."""
        require_read(request)
        body = reads.finished.get(run_id)
        if body is None:
            body = reads.body_of(await _get_run(request, run_id))
        return Response(body, media_type=_JSON)

    return get_run


async def trigger_run(request: Request, body: TriggerBody) -> Response:
    settings: Settings = request.app.state.settings
    check_ref(body.ref, where="POST /api/v1/runs: ref")
    check_variable_names(body.variables, where="POST /api/v1/runs: variables")
    if settings.repo(body.repo) is None:
        raise ApiError(
            404,
            "unknown_repo",
            f"Repo {body.repo!r} is not declared in conveyor.toml (add a [[repos]] entry).",
        )
    try:
        run = await _queue(request).trigger(
            body.repo, body.ref, body.sha, body.variables, body.event
        )
    except GitError as error:
        raise ApiError(
            422, "ref_not_found", f"{error} (push it, or pass an existing ref)"
        ) from None
    return json_response(run, status_code=202, headers={"Location": f"/api/v1/runs/{run.run_id}"})


async def cancel_run(request: Request, run_id: str) -> Response:
    run = await _get_run(request, run_id)
    if run.status.is_final:
        raise ApiError(409, "run_finished", f"Run {run_id!r} already ended ({run.status}).")
    if not await _queue(request).cancel(run_id):
        raise ApiError(409, "run_finished", f"Run {run_id!r} already ended.")
    return json_response(
        {"run_id": run_id, "status": str(run.status), "cancel_requested": True}, 202
    )


async def retry_run(request: Request, run_id: str) -> Response:
    """A new run of what started run `run_id` (repo, ref, sha, event, variables, the pull or
    merge request, the manual jobs it played): 202 with the new run's record."""
    run = await _get_run(request, run_id)
    if not run.status.is_final:
        raise ApiError(
            409,
            "run_not_finished",
            f"Run {run_id!r} has not ended ({run.status}): cancel it first, or wait for it.",
        )
    played = run.trigger.get("play")
    queued = await _queue(request).enqueue(
        event_from_trigger(run.trigger),
        play=[str(job) for job in played] if isinstance(played, list) else (),
    )
    new = await _get_run(request, queued.run_id)
    return json_response(new, status_code=202, headers={"Location": f"/api/v1/runs/{new.run_id}"})


class _Rerun(NamedTuple):
    """What differs between playing a manual job and retrying a failed one (the routes)."""

    name: str  # the route's endpoint name
    doc: str  # the route's description
    is_retry: bool
    code: str  # the 409 when the job is not in a state to be rerun
    refused: str  # why this job cannot: formatted with job, run_id and state


_PLAY = _Rerun(
    "play_job",
    "Play manual job `job` in run `run_id` (same run): 202 with the run's record.",
    False,
    "job_not_manual",
    "Job {job!r} of run {run_id!r} is not a manual job waiting to be played ({state}).",
)
_RETRY = _Rerun(
    "retry_job",
    "Retry failed or canceled job `job` in run `run_id` (same run, its next attempt, then "
    "the jobs after it that never ran): 202 with the run's record.",
    True,
    "job_not_retryable",
    "Job {job!r} of run {run_id!r} is {state}: only a failed or canceled job can be retried.",
)


def _rerun_route(reads: RunReads, kind: _Rerun) -> Callable[[Request, str, str], Any]:
    async def rerun_job(request: Request, run_id: str, job: str) -> Response:
        run = await _get_run(request, run_id)
        _check_job(run, job, _logs(request, run_id))
        # RunCanceled: 409 run_canceled, worded as the engine words it (engine.resume).
        check_not_canceled(run, is_retry=kind.is_retry, is_cancel_requested=False)
        record = next((j for j in run.jobs if j.name == job), None)
        wanted = RETRYABLE if kind.is_retry else (Status.MANUAL,)
        if record is None or record.status not in wanted:
            state = record.status if record is not None else "not planned yet"
            raise ApiError(409, kind.code, kind.refused.format(job=job, run_id=run_id, state=state))
        queue = _queue(request)
        try:
            rerun = await (queue.retry if kind.is_retry else queue.play)(run_id, job)
        except (RunCanceled, RunEnding):
            # 409 run_canceled: canceled since the check above (a cancel requested); 409
            # run_ending: the run's final record came too late to resume it (runs.queue).
            raise
        except ConflictError as error:
            raise ApiError(409, kind.code, str(error)) from None
        if rerun is None:
            raise run_not_found(run_id)
        reads.finished.forget(run_id, datetime.now(UTC))
        location = {"Location": f"/api/v1/runs/{rerun.run_id}"}
        return json_response(rerun, status_code=202, headers=location)

    rerun_job.__name__, rerun_job.__doc__ = kind.name, kind.doc
    return rerun_job


async def job_log(
    request: Request,
    run_id: str,
    job: str,
    follow: bool = False,
    offset: Annotated[int, Query(ge=0, le=MAX_LOG_OFFSET)] = 0,
    last_event_id: Annotated[str | None, Header()] = None,
) -> Response:
    """JSONL (`application/x-ndjson`): the stored lines as they are, and `X-Log-Offset`,
    the byte offset they end at. With `?follow=1`, Server-Sent Events until the job ends:
    a `Last-Event-ID` header resumes after that line number, and `offset` (an
    `X-Log-Offset`) starts reading the log there instead of from its start."""
    run = await _get_run(request, run_id)
    logs = _logs(request, run_id)
    _check_job(run, job, logs)
    if not follow:
        jsonl = await asyncio.to_thread(logs.read_job_jsonl, job)
        return StreamingResponse(
            threaded_chunks(jsonl.chunks),
            media_type="application/x-ndjson",
            headers={LOG_OFFSET_HEADER: str(jsonl.end_offset)},
        )
    seen = last_event_id or ""
    readable = seen.isascii() and seen.isdigit() and len(seen) <= _MAX_EVENT_ID_DIGITS
    after_n = int(seen) if readable else 0
    store = _store(request)

    async def outcome() -> str | None:
        latest = await asyncio.to_thread(store.get_run, run_id)
        return job_outcome(latest, job)

    return StreamingResponse(
        stream_job_log(logs, job, outcome=outcome, after_n=after_n, offset=offset),
        media_type="text/event-stream",
        headers=SSE_HEADERS,
    )


def job_outcome(run: RunRecord | None, job: str) -> str | None:
    """The job's final status once it has one (or once the run ended without it)."""
    if run is None:
        return "canceled"  # the run vanished (store reset): nothing more will come
    record = next((j for j in run.jobs if j.name == job), None)
    if record is not None and record.status.is_final and record.status is not Status.MANUAL:
        return str(record.status)
    if run.status.is_final and run.status is not Status.MANUAL:
        return str(record.status) if record is not None else str(run.status)
    return None


async def _allow_read(request: Request) -> None:
    # An async wrapper: FastAPI runs a plain `def` dependency in its thread pool, a thread
    # hop per request on the API's hottest path (GET /runs/{id}).
    require_read(request)


async def _allow_write(request: Request) -> None:
    require_write(request)


def build_router(reads: RunReads | None = None) -> APIRouter:
    """The runs API under /api/v1. Reads need the read token unless server.public_read.
    `reads`: the run reads shared with the app's fast path (a new one when not given)."""
    read = [Depends(_allow_read)]
    write = [Depends(_allow_write)]
    router = APIRouter(prefix="/api/v1", tags=["runs"])
    router.add_api_route("/runs", list_runs, methods=["GET"], dependencies=read)
    router.add_api_route("/runs", trigger_run, methods=["POST"], dependencies=write)
    # No dependency: the handler checks the read token itself (one less thing to solve).
    reads = reads or RunReads()
    router.add_api_route("/runs/{run_id}", _get_run_route(reads), methods=["GET"])
    router.add_api_route("/runs/{run_id}/cancel", cancel_run, methods=["POST"], dependencies=write)
    router.add_api_route("/runs/{run_id}/retry", retry_run, methods=["POST"], dependencies=write)
    router.add_api_route(
        "/runs/{run_id}/jobs/{job:path}/play",
        _rerun_route(reads, _PLAY),
        methods=["POST"],
        dependencies=write,
    )
    router.add_api_route(
        "/runs/{run_id}/jobs/{job:path}/retry",
        _rerun_route(reads, _RETRY),
        methods=["POST"],
        dependencies=write,
    )
    router.add_api_route(
        "/runs/{run_id}/jobs/{job:path}/log", job_log, methods=["GET"], dependencies=read
    )
    return router
