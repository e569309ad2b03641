"""structlog set-up: one call from `conveyor serve` or the CLI, never at import.

Owns the processor chain (context vars, level, UTC timestamp, exception text, the secret
masker, then the renderer: orjson JSON lines in the server, console in the CLI) and routes the
standard library's logging (uvicorn, asyncio) through the same masker and renderer, so no
line that leaves the process can carry a secret value. It does not decide what is logged.

The JSON set-up is built for the server's access log (one event per request): the time stamp
is formatted once per second, the masker is folded into the renderer (the rendered line is
searched for every secret, raw and JSON-escaped — `in` for a few, one compiled alternation
for many; only a hit re-renders the masked event; the access line, whose values are known,
looks for the raw secrets in its string values instead), and lines written on an event loop are
buffered and written to stderr every few milliseconds (`flush_logs`, also run at exit,
writes whatever is left).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any, TextIO

import orjson
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from conveyor.masking import Masker

__all__ = ["AccessLine", "SecretMasker", "access_line", "configure_logging", "flush_logs"]

_QUIET = ("alembic", "httpx", "httpcore")
_FLUSH_AFTER_S = 0.005  # a line logged on an event loop is written within about this
_MAX_BUFFERED = 1024  # lines buffered before they are written at once, whatever the time
_FEW_FORMS = 8  # up to this many secret forms, `in` beats one compiled alternation


class SecretMasker:
    """A structlog processor replacing every secret value in every string of an event, by
    the one rule of `conveyor.masking` (its Masker masks; this class adds the quick tests
    of a rendered line and the walk through an event's values)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._masker = Masker(secrets)
        self._secrets = self._masker.values  # the maskable values, longest first
        # One alternation of every secret, raw and as JSON escapes it (a renderer's quick
        # "is there anything to mask in this line" test); None without secrets.
        forms = {form for s in self._secrets for form in (s, orjson.dumps(s).decode()[1:-1])}
        self.pattern: re.Pattern[str] | None = (
            re.compile("|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True)))
            if forms
            else None
        )
        self._forms = tuple(forms)
        # The raw secrets alone, for `holds_secret`: the alternation only past _FEW_FORMS.
        self._raw_pattern: re.Pattern[str] | None = (
            re.compile("|".join(re.escape(s) for s in self._secrets))
            if len(self._secrets) > _FEW_FORMS
            else None
        )

    def found_in(self, line: str) -> bool:
        """Whether `line` holds a secret, raw or as JSON escapes it. A few forms are
        looked for with `in` (cheaper than the alternation's scan); many with the pattern."""
        if len(self._forms) <= _FEW_FORMS:
            # A plain loop: any() over a generator costs about 0.3 µs more per line.
            for form in self._forms:  # noqa: SIM110
                if form in line:
                    return True
            return False
        return self.pattern is not None and self.pattern.search(line) is not None

    def holds_secret(self, text: str) -> bool:
        """Whether `text` (raw values, not rendered JSON) holds a secret as it is."""
        if self._raw_pattern is not None:
            return self._raw_pattern.search(text) is not None
        for secret in self._secrets:  # noqa: SIM110 - a loop, as in found_in
            if secret in text:
                return True
        return False

    def mask(self, text: str) -> str:
        return self._masker.mask(text)

    def _mask_value(self, value: object) -> object:
        if isinstance(value, str):
            return self.mask(value)
        if isinstance(value, dict):
            return {k: self._mask_value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._mask_value(v) for v in value]
        if value is None or isinstance(value, bool | int | float):
            return value
        return self.mask(str(value))

    def __call__(self, logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
        if not self._secrets:
            return event
        return {key: self._mask_value(value) for key, value in event.items()}


class _MaskingJsonRenderer:
    """The JSON renderer with the masker folded in: render the event with orjson, and only
    when the line contains a secret (raw or as JSON escapes it) render the masked event
    instead. JSON escaping maps each character on its own, so a secret inside any string
    value shows in the line as its escaped form: no hit in the line, nothing to mask."""

    def __init__(self, masker: SecretMasker) -> None:
        self.masker = masker

    def __call__(self, logger: WrappedLogger, method: str, event: EventDict) -> str:
        line = orjson.dumps(event, default=str).decode()
        if not self.masker.found_in(line):
            return line
        return orjson.dumps(self.masker(logger, method, event), default=str).decode()


class _UtcTimestamp:
    """`timestamp` as structlog's ISO UTC stamper writes it (`2026-01-02T03:04:05.678901Z`),
    with the date and time formatted once per second instead of once per event."""

    def __init__(self) -> None:
        self._cached: tuple[int, str] = (-1, "")  # one attribute: threads read it whole

    def __call__(self, logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
        event["timestamp"] = self.now()
        return event

    def now(self) -> str:
        """The current time stamp (one clock read, integer arithmetic only)."""
        micros = time.time_ns() // 1000
        second = micros // 1_000_000
        cached_second, prefix = self._cached
        if second != cached_second:
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._cached = (second, prefix)
        return prefix + "." + str(micros)[-6:] + "Z"  # micros has more than six digits


class _LineWriter:
    """Lines to one text stream. On an event loop's thread a line is buffered and the buffer
    written (and flushed) by a timer of that loop `_FLUSH_AFTER_S` later, or at once past
    `_MAX_BUFFERED` lines: one write for all the requests of a few milliseconds. Elsewhere
    (worker threads, no running loop) a line is written and flushed at once, with whatever
    is buffered. `flush()` also runs at interpreter exit, so a graceful stop (SIGTERM) loses
    nothing; a loop that closes before its timer fires leaves its lines to the next write
    or to that exit flush."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._scheduled: asyncio.AbstractEventLoop | None = None  # the loop with a timer

    def write_line(self, line: str) -> None:
        loop = asyncio._get_running_loop()  # None off a loop's thread, without raising
        with self._lock:
            self._lines.append(line)
            if loop is not None and len(self._lines) < _MAX_BUFFERED:
                if self._scheduled is not loop:
                    self._scheduled = loop
                    loop.call_later(_FLUSH_AFTER_S, self.flush)
                return
            self._write_locked()

    def flush(self) -> None:
        with self._lock:
            self._write_locked()

    def _write_locked(self) -> None:
        self._scheduled = None
        if not self._lines:
            return
        text = "\n".join(self._lines) + "\n"
        self._lines.clear()
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            pass  # stderr closed or gone: nowhere left to report it


class _LineLogger:
    """The structlog logger of the JSON set-up: every level hands the rendered line to
    the shared `_LineWriter`."""

    def __init__(self, writer: _LineWriter) -> None:
        self._writer = writer

    def msg(self, message: str) -> None:
        self._writer.write_line(message)

    log = debug = info = warn = warning = err = error = critical = exception = fatal = msg


class _LineHandler(logging.Handler):
    """The stdlib handler writing formatted records through the same `_LineWriter`."""

    def __init__(self, writer: _LineWriter) -> None:
        super().__init__()
        self._writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._writer.write_line(self.format(record))
        except Exception:  # noqa: BLE001 - logging must never raise into the caller
            self.handleError(record)


_WRITERS: list[_LineWriter] = []

# Logs one access event (request_id, method, path, status, duration_ms); False when it did
# not (structlog reconfigured since): the caller logs it through structlog then.
AccessLine = Callable[[str, str, str, int, float], bool]


class _AccessLine:
    """The access event rendered straight into the writer (see the module docstring)."""

    def __init__(
        self,
        processors: list[Processor],
        stamp: _UtcTimestamp,
        renderer: _MaskingJsonRenderer,
        writer: _LineWriter,
    ) -> None:
        self.processors = processors  # structlog's configured list, edited in place by tools
        self._now = stamp.now
        self._renderer = renderer
        self._holds_secret = renderer.masker.holds_secret
        # The masker replaces secrets inside string values only, so the line needs masking
        # exactly when a raw secret is inside one: the constant values are looked at once.
        self._always_mask = renderer.masker.holds_secret("http.request\0info")
        self._write = writer.write_line

    def __call__(
        self, request_id: str, method: str, path: str, status: int, duration_ms: float
    ) -> bool:
        renderer = self._renderer
        if self.processors[-1] is not renderer:  # captured or edited: structlog's turn
            return False
        stamp = self._now()
        event: EventDict = {
            "request_id": request_id,
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": duration_ms,
            "event": "http.request",
            "level": "info",
            "timestamp": stamp,
        }
        # The variable string values, NUL-separated (no environment value holds a NUL): a
        # shorter haystack than the rendered line, and no JSON-escaped forms to look for.
        if self._always_mask or self._holds_secret(f"{request_id}\0{method}\0{path}\0{stamp}"):
            self._write(renderer(None, "info", event))
        else:
            self._write(orjson.dumps(event).decode())  # every value is a str, int or float
        return True


class _AccessLines:
    current: _AccessLine | None = None


_ACCESS_LINES = _AccessLines()


def access_line() -> AccessLine | None:
    """The direct access-event logger of the JSON set-up, or None when structlog is not
    configured as `configure_logging(json=True)` left it (another configuration, a level
    above INFO): log through structlog then. Call it after configuring logging."""
    current = _ACCESS_LINES.current
    if current is None or structlog.get_config()["processors"] is not current.processors:
        return None
    return current


def flush_logs() -> None:
    """Write every buffered log line now (also registered to run at interpreter exit)."""
    for writer in _WRITERS:
        writer.flush()


def configure_logging(
    *,
    json: bool,
    secrets: Iterable[str],
    level: int = logging.INFO,
    stream: TextIO | None = None,
) -> None:
    """Configure structlog and the stdlib root logger (idempotent: replaces prior set-up)."""
    out = stream if stream is not None else sys.stderr
    masker = SecretMasker(secrets)
    stamp = _UtcTimestamp()
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        stamp,
    ]
    tail: list[Processor]
    handler: logging.Handler
    _ACCESS_LINES.current = None
    if json:
        flush_logs()
        writer = _LineWriter(out)
        _WRITERS[:] = [writer]
        json_renderer = _MaskingJsonRenderer(masker)
        tail = [_format_exc_info, json_renderer]
        line_logger = _LineLogger(writer)

        def factory(*args: Any) -> _LineLogger:
            return line_logger

        logger_factory: Any = factory
        handler = _LineHandler(writer)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=out.isatty())
        tail = [structlog.processors.format_exc_info, masker, renderer]
        logger_factory = structlog.PrintLoggerFactory(file=out)
        handler = logging.StreamHandler(out)
    processors = [*shared, *tail]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=logger_factory,
        cache_logger_on_first_use=False,
    )
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, _add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *tail,
            ],
        )
    )
    if json and level <= logging.INFO:
        _ACCESS_LINES.current = _AccessLine(processors, stamp, json_renderer, writer)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Chatty libraries: alembic narrates every migration step, httpx logs every URL it
    # calls (a Slack webhook URL is a secret); only their warnings are worth a line.
    for name in _QUIET:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))


def _format_exc_info(logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
    # structlog's processor, skipped (one key lookup) for the events without exc_info.
    if "exc_info" not in event:
        return event
    return structlog.processors.format_exc_info(logger, method, event)


def _add_logger_name(
    logger: WrappedLogger, method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    record = event.get("_record")
    if isinstance(record, logging.LogRecord):
        event["logger"] = record.name
    return event


atexit.register(flush_logs)
