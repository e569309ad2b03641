"""The JSON log lines `conveyor.logconfig` buffers on an event loop reach the stream within a
few milliseconds, without anything else being logged."""

from __future__ import annotations

import asyncio
import io
import logging
import time

import orjson
import structlog

from conveyor.logconfig import configure_logging, flush_logs


async def test_buffered_lines_are_written_by_the_loop_timer() -> None:
    out = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    configure_logging(json=True, secrets=[], stream=out)
    try:
        structlog.get_logger("t").info("http.request", status=200)
        assert out.getvalue() == ""
        deadline = time.monotonic() + 2
        while not out.getvalue() and time.monotonic() < deadline:
            await asyncio.sleep(0.001)
        lines = [orjson.loads(line) for line in out.getvalue().splitlines()]
    finally:
        flush_logs()
        structlog.reset_defaults()
        root.handlers[:], root.level = saved
    assert [(line["event"], line["status"]) for line in lines] == [("http.request", 200)]
