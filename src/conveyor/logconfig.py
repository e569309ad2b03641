"""structlog set-up: one call from `conveyor serve` or the CLI, never at import.

Owns the processor chain (context vars, level, UTC timestamp, exception text, the secret
masker, then the renderer: orjson JSON lines in the server, console in the CLI) and routes the
standard library's logging (uvicorn, asyncio) through the same masker and renderer, so no
line that leaves the process can carry a secret value. It does not decide what is logged.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import orjson
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

__all__ = ["MASK", "SecretMasker", "configure_logging"]

MASK = "[MASKED]"
_QUIET = ("alembic", "httpx", "httpcore")


class SecretMasker:
    """A structlog processor replacing every secret value in every string of an event."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so a secret containing another is masked whole.
        self._secrets = tuple(sorted({s for s in secrets if s}, key=len, reverse=True))

    def mask(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

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


def _render_json(logger: WrappedLogger, method: str, event: EventDict) -> str:
    return orjson.dumps(event, default=str).decode()


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
    renderer: Processor = (
        _render_json if json else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    tail: list[Processor] = [structlog.processors.format_exc_info, masker, renderer]
    structlog.configure(
        processors=[*shared, *tail],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, _add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *tail,
            ],
        )
    )
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


def _add_logger_name(
    logger: WrappedLogger, method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    record = event.get("_record")
    if isinstance(record, logging.LogRecord):
        event["logger"] = record.name
    return event
