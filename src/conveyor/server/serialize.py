"""How the runs API turns records into bytes: orjson JSON answers, pages of runs, JSONL log
streams, and the did-you-mean for unknown job names.

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

from conveyor.model import LogRecord, RunRecord
from conveyor.records import log_to_dict, run_to_dict

__all__ = ["json_response", "ndjson_chunks", "run_page"]

_LOG_BATCH = 2000  # records read per worker-thread hop


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


def _take(records: Iterator[LogRecord], count: int) -> bytes:
    lines = [
        orjson.dumps(log_to_dict(r), option=orjson.OPT_APPEND_NEWLINE)
        for _, r in zip(range(count), records, strict=False)
    ]
    return b"".join(lines)


async def ndjson_chunks(records: Iterator[LogRecord]) -> AsyncIterator[bytes]:
    """JSONL bytes of `records`, read in a worker thread so a large log never blocks the loop."""
    while chunk := await asyncio.to_thread(_take, records, _LOG_BATCH):
        yield chunk
