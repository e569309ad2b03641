"""How the runs API turns records into bytes: orjson JSON answers, pages of runs, JSONL log
streams (passed on as stored), and the did-you-mean for unknown job names.

Field names and time formats come from `conveyor.records` (the contract); this module only
frames them. Handlers stay free of serialisation. Reads log files only through the iterator it
is given, in a worker thread, in batches.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

import orjson
from fastapi import Response

from conveyor.model import RunRecord
from conveyor.records import run_to_dict

__all__ = ["json_response", "run_page", "threaded_chunks"]


def json_response(
    content: RunRecord | Mapping[str, Any],
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    data = run_to_dict(content) if isinstance(content, RunRecord) else content
    return Response(
        orjson.dumps(data),
        status_code=status_code,
        media_type="application/json",
        headers=dict(headers or {}),
    )


def run_page(runs: Sequence[RunRecord], *, limit: int, offset: int) -> dict[str, Any]:
    """`runs` holds up to limit + 1 runs (newest first); the extra one only says "more"."""
    has_more = len(runs) > limit
    return {
        "runs": [run_to_dict(run) for run in runs[:limit]],
        "limit": limit,
        "offset": offset,
        "next_offset": offset + limit if has_more else None,
    }


async def threaded_chunks(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """`chunks` (e.g. a log file's JSONL, `LogReader.read_job_jsonl`), each read in a worker
    thread so a large log never blocks the loop."""
    while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
        yield chunk
