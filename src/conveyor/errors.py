"""The exception tree. Every error a user can cause or must act on is a ConveyorError.

    ConveyorError                      exit 1
    ├── ConfigError(problems)          exit 2   a pipeline or settings file is wrong
    ├── UsageError                     exit 2   a command line is wrong
    ├── StoreError                     exit 1   the run store cannot be read or written
    ├── WebhookRejected(status_code)            a delivery is refused (401, 400, 404, 413)
    └── UpstreamError                           GitLab / GitHub / Jenkins / Slack misbehaved
        ├── UpstreamTimeout
        ├── UpstreamRateLimited(reset_at)
        ├── UpstreamAuthError
        └── UpstreamBadPayload

Messages are complete sentences of the form "where: what (how to fix)". They never hold a
secret, a raw upstream body, or a URL carrying a token. This module does no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = [
    "ConfigError",
    "ConflictError",
    "ConveyorError",
    "Problem",
    "StoreError",
    "UpstreamAuthError",
    "UpstreamBadPayload",
    "UpstreamError",
    "UpstreamRateLimited",
    "UpstreamTimeout",
    "UsageError",
    "WebhookRejected",
]


class ConveyorError(Exception):
    """Root of conveyor's errors; `exit_code` is what the CLI exits with."""

    exit_code: int = 1


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    """One finding in a file: sorted by position, rendered as `FILE:LINE:COL: message`.

    `line` and `col` count from 1; 0 means "the file as a whole".
    """

    file: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        if self.line <= 0:
            return f"{self.file}: {self.message}"
        return f"{self.file}:{self.line}:{self.col}: {self.message}"


class ConfigError(ConveyorError):
    """A pipeline or settings file has one or more problems; all of them are kept."""

    exit_code = 2

    def __init__(self, problems: list[Problem] | tuple[Problem, ...]) -> None:
        self.problems: tuple[Problem, ...] = tuple(sorted(problems))
        super().__init__("\n".join(str(p) for p in self.problems))


class UsageError(ConveyorError):
    """A command line asks for something impossible (unknown job, bad --var)."""

    exit_code = 2


class ConflictError(ConveyorError):
    """What is asked for conflicts with the current state (a run still executing, a job
    already played): the API answers 409."""

    exit_code = 2


class StoreError(ConveyorError):
    """The run store or the log files cannot be read or written."""


class WebhookRejected(ConveyorError):
    """A webhook delivery is refused; `status_code` and `code` go into the error envelope."""

    def __init__(self, message: str, *, status_code: int, code: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code


class UpstreamError(ConveyorError):
    """An upstream (GitLab, GitHub, Jenkins, Slack) failed. `reason` is short and sanitized,
    e.g. "upstream 502", "invalid JSON"; it is what the API shows as an entry's `error`."""

    kind: str = "upstream_error"

    def __init__(self, reason: str, *, status_code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_code = status_code


class UpstreamTimeout(UpstreamError):
    kind = "timeout"


class UpstreamRateLimited(UpstreamError):
    kind = "rate_limited"

    def __init__(self, reason: str, *, reset_at: datetime | None, status_code: int | None = None):
        super().__init__(reason, status_code=status_code)
        self.reset_at = reset_at


class UpstreamAuthError(UpstreamError):
    kind = "auth"


class UpstreamBadPayload(UpstreamError):
    kind = "bad_payload"
