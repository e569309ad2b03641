"""Validation of every upstream value before it may enter the monitor cache.

Owns `PipelineView` (the one allow-listed shape of a watched pipeline, DESIGN's entry shape)
and the checks behind it: a `sha` is 40 or 64 hex characters, a `ref` holds no `..`, no
control characters and is at most 255 characters, a URL is http(s), times are RFC 3339.
Anything that fails is `Invalid`, and the provider drops and counts the record. Pure: no I/O,
no clock.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from conveyor.model import Status

__all__ = [
    "Invalid",
    "PipelineView",
    "check_id",
    "check_one_of",
    "check_ref",
    "check_sha",
    "check_time",
    "check_url",
    "epoch_ms_to_time",
]

MAX_REF_LENGTH = 255
MAX_URL_LENGTH = 2048
_SHA = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Invalid(ValueError):
    """An upstream record failed validation; it is dropped, counted and never served."""


@dataclass(frozen=True, slots=True)
class PipelineView:
    """One upstream pipeline / workflow run / build, validated. Only these fields are served."""

    id: int
    status: Status
    ref: str
    sha: str | None
    web_url: str
    created_at: datetime | None
    updated_at: datetime | None
    duration_s: float | None
    # Kept in the target's history (not in the entry's JSON): when it started and ended.
    started_at: datetime | None = None
    finished_at: datetime | None = None


def check_one_of(table: Mapping[str, Status], value: Any, what: str) -> Status:
    """The status a known upstream word maps to; Invalid for anything else."""
    found = table.get(value) if isinstance(value, str) else None
    if found is None:
        raise Invalid(f"unknown {what}")
    return found


def check_id(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**63:
        raise Invalid("id must be a positive integer")
    return value


def check_sha(value: Any) -> str:
    if not isinstance(value, str) or not _SHA.match(value.lower()):
        raise Invalid("sha must be 40 or 64 hex characters")
    return value.lower()


def check_ref(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_REF_LENGTH:
        raise Invalid(f"ref must be a non-empty string of at most {MAX_REF_LENGTH} characters")
    if ".." in value or _CONTROL.search(value):
        raise Invalid("ref must not contain '..' or control characters")
    return value


def check_url(value: Any) -> str:
    if not isinstance(value, str) or len(value) > MAX_URL_LENGTH or _CONTROL.search(value):
        raise Invalid("url must be a short string without control characters")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid("url must be http(s) with a host")
    if parts.username is not None or parts.password is not None:
        raise Invalid("url must not carry credentials")
    return value


def check_time(value: Any, *, optional: bool = True) -> datetime | None:
    """An RFC 3339 / ISO 8601 timestamp with a zone, as aware UTC."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or len(value) > 40:
        raise Invalid("time must be an RFC 3339 string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise Invalid("time must be an RFC 3339 string") from exc
    if parsed.tzinfo is None:
        raise Invalid("time must carry a zone")
    return parsed.astimezone(UTC)


def epoch_ms_to_time(value: Any) -> datetime:
    """Jenkins' `timestamp` (milliseconds since the epoch) as aware UTC."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 10**14:
        raise Invalid("timestamp must be milliseconds since the epoch")
    return datetime.fromtimestamp(value / 1000, tz=UTC)
