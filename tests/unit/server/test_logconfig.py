"""The JSON access-log chain of `conveyor.logconfig`: buffered lines, masking, time stamps,
and the direct access line (`access_line`)."""

from __future__ import annotations

import asyncio
import io
import logging
import re
from collections.abc import Iterator

import orjson
import pytest
import structlog
from structlog.testing import capture_logs

from conveyor.logconfig import access_line, configure_logging, flush_logs
from conveyor.masking import MASK

SECRET = 'tok"en\\0123456789-very-secret'


@pytest.fixture
def out() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    configure_logging(json=True, secrets=[SECRET, "plain-secret-0123456789"], stream=stream)
    try:
        yield stream
    finally:
        flush_logs()
        structlog.reset_defaults()
        root.handlers[:], root.level = saved


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


def test_json_event_has_level_and_utc_timestamp(out: io.StringIO) -> None:
    structlog.get_logger("t").info("http.request", status=200, duration_ms=0.5)
    [line] = _lines(out)
    assert (line["event"], line["level"], line["status"]) == ("http.request", "info", 200)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", str(line["timestamp"]))


def test_secrets_are_masked_also_when_json_escapes_them(out: io.StringIO) -> None:
    log = structlog.get_logger("t")
    log.warning("t.event", url=f"https://x/{SECRET}?", nested={"a": ["plain-secret-0123456789"]})
    logging.getLogger("uvicorn.error").error("boom %s", SECRET)
    text = out.getvalue()
    assert "0123456789" not in text
    first, second = _lines(out)
    assert first["url"] == f"https://x/{MASK}?"
    assert first["nested"] == {"a": [MASK]}
    assert (second["event"], second["logger"]) == (f"boom {MASK}", "uvicorn.error")


async def test_lines_logged_on_a_loop_wait_for_flush_logs(out: io.StringIO) -> None:
    log = structlog.get_logger("t")
    log.info("one")
    log.info("two")
    assert out.getvalue() == ""  # buffered: the loop's timer or an exit writes them
    flush_logs()
    assert [line["event"] for line in _lines(out)] == ["one", "two"]


async def test_lines_logged_in_a_worker_thread_are_written_at_once(out: io.StringIO) -> None:
    def log_in_thread() -> str:
        structlog.get_logger("t").info("from thread")
        return out.getvalue()

    assert "from thread" in await asyncio.to_thread(log_in_thread)


def test_access_line_renders_what_structlog_renders(out: io.StringIO) -> None:
    line = access_line()
    assert line is not None
    assert line("rid-1", "GET", "/api/v1/pipelines/a@main", 200, 0.25)
    structlog.get_logger("t").info(
        "http.request",
        request_id="rid-1",
        method="GET",
        path="/api/v1/pipelines/a@main",
        status=200,
        duration_ms=0.25,
    )
    flush_logs()
    direct, chained = _lines(out)
    assert list(direct) == list(chained)  # the same fields in the same order
    assert {**direct, "timestamp": ""} == {**chained, "timestamp": ""}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", str(direct["timestamp"]))


def test_access_line_masks_secrets(out: io.StringIO) -> None:
    line = access_line()
    assert line is not None
    assert line("plain-secret-0123456789", "GET", f"/api/v1/pipelines/{SECRET}", 404, 0.1)
    flush_logs()
    assert "0123456789" not in out.getvalue()
    [logged] = _lines(out)
    assert (logged["request_id"], logged["path"]) == (MASK, f"/api/v1/pipelines/{MASK}")


def test_access_line_stands_aside_when_structlog_is_captured_or_reconfigured(
    out: io.StringIO,
) -> None:
    line = access_line()
    assert line is not None
    with capture_logs() as logs:
        assert not line("rid-2", "GET", "/healthz", 200, 0.1)
    assert logs == []
    structlog.configure(processors=[structlog.processors.JSONRenderer()])
    assert access_line() is None
    assert not out.getvalue()


def test_no_access_line_above_info_or_for_the_console() -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure_logging(json=True, secrets=[], stream=io.StringIO(), level=logging.WARNING)
        assert access_line() is None
        configure_logging(json=False, secrets=[], stream=io.StringIO())
        assert access_line() is None
    finally:
        structlog.reset_defaults()
        root.handlers[:], root.level = saved


_MANY = [f"many-secret-{n:02d}-abcdefgh" for n in range(12)]  # past the `in` loop's limit


@pytest.mark.parametrize(
    ("secrets", "request_id", "method", "path"),
    [
        ([SECRET], "rid-3", "GET", "/api/v1/pipelines/a@main"),  # nothing to mask
        ([SECRET], "rid-4", "GET", f"/p/{SECRET}/{SECRET}"),  # escaped twice in the line
        (["GET"], "rid-5", "GET", "/healthz"),  # in the method
        (["request"], "rid-6", "GET", "/healthz"),  # in a constant value and in keys
        (["info"], "rid-7", "GET", "/healthz"),  # the level's value
        (["id-8"], "rid-8", "GET", "/healthz"),  # the id
        (['main","status'], "rid-9", "GET", "/a@main"),  # only across values: kept
        (_MANY, "rid-10", "GET", f"/p/{_MANY[7]}?x={_MANY[11]}"),  # the alternation
        (_MANY, "rid-11", "GET", "/p/many-secret-"),  # a prefix of them: kept
    ],
)
def test_access_line_masks_exactly_as_structlog_does(
    secrets: list[str], request_id: str, method: str, path: str
) -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    configure_logging(json=True, secrets=secrets, stream=stream)
    try:
        line = access_line()
        assert line is not None
        assert line(request_id, method, path, 200, 0.5)
        structlog.get_logger("t").info(
            "http.request",
            request_id=request_id,
            method=method,
            path=path,
            status=200,
            duration_ms=0.5,
        )
        flush_logs()
    finally:
        structlog.reset_defaults()
        root.handlers[:], root.level = saved
    direct, chained = _lines(stream)
    assert {**direct, "timestamp": ""} == {**chained, "timestamp": ""}
