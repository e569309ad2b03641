"""The exception tree. Every error a user can cause or must act on is a ConveyorError.

    ConveyorError                     exit 1  500 internal_error
    ├── ConfigError(problems)         exit 2  422 invalid_config     a pipeline/settings file
    ├── IncludeFetchError             exit 2  422 include_unavailable  `include: remote` failed
    │   └── IncludeUnreachable                                         its host out of reach
    ├── UsageError                    exit 2  400 bad_request        a command line is wrong
    │   ├── InvalidRef                        422 invalid_ref        not a branch or tag name
    │   └── RefusedVariable                   422 refused_variable   BASH_ENV, LD_*, PATH…
    ├── ConflictError                 exit 2  409 conflict           not possible in this state
    │   ├── RunCanceled                       409 run_canceled       a job of a canceled run
    │   └── RunEnding                         409 run_ending         its final record is late
    ├── StoreError                    exit 1  503 store_unavailable  the run store failed
    │   └── store.executor.IntegrityConflict, MissingReference
    ├── GitError                      exit 1  502 git_failed         git could not do its part
    │   └── git.base.GitFailed
    ├── WebhookRejected(http_status, code)    400/401/404/413/415    a delivery is refused
    ├── UpstreamError                 exit 1  502 upstream_error     GitLab/GitHub/Jenkins/Slack
    │   ├── UpstreamTimeout                   504 upstream_timeout
    │   ├── UpstreamRateLimited(reset_at)     429 upstream_rate_limited
    │   ├── UpstreamAuthError
    │   ├── UpstreamBadPayload
    │   │   └── UpstreamTooLarge(limit_bytes)   the body passed the outbound client's cap
    │   ├── UpstreamUnreachable(cause)          no connection, or it broke
    │   │   └── UpstreamAddressRefused          an internal address no allow-list names
    │   ├── UpstreamRedirectError               too many redirects, or to a non-http URL
    │   └── fleet.files.RunFilesError           run_files_failed: a worker's transfer failed
    ├── fleet.archive.BadArchive              422 bad_archive        an unsafe or broken tar.gz
    └── server.errors.ApiError(http_status, code)   any other refusal of the HTTP API

How an error leaves conveyor is said by class attributes: `exit_code` (the CLI's, as in
click), `http_status` and `code` (the API's one error envelope, `server.errors`). The two
errors whose status depends on the case (WebhookRejected, ApiError) set them per instance.
`http_message`, when set, is what the envelope says instead of the message (a store error
may name files the API's callers need not see).

Messages are complete sentences of the form "where: what (how to fix)". They never hold a
secret, a raw upstream body, raw exception text, or a URL carrying a token. This module does
no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

__all__ = [
    "ConfigError",
    "ConflictError",
    "ConveyorError",
    "GitError",
    "IncludeFetchError",
    "IncludeUnreachable",
    "InvalidRef",
    "Problem",
    "RefusedVariable",
    "RunCanceled",
    "RunEnding",
    "StoreError",
    "UpstreamAddressRefused",
    "UpstreamAuthError",
    "UpstreamBadPayload",
    "UpstreamError",
    "UpstreamRateLimited",
    "UpstreamRedirectError",
    "UpstreamTimeout",
    "UpstreamTooLarge",
    "UpstreamUnreachable",
    "UsageError",
    "WebhookRejected",
]


class ConveyorError(Exception):
    """Root of conveyor's errors: `exit_code` for the CLI, `http_status` and `code` for the
    API's error envelope, `http_message` (when not None) replaces the message there."""

    exit_code: int = 1
    http_status: int = 500
    code: str = "internal_error"
    http_message: ClassVar[str | None] = None


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
    http_status = 422
    code = "invalid_config"

    def __init__(self, problems: list[Problem] | tuple[Problem, ...]) -> None:
        self.problems: tuple[Problem, ...] = tuple(sorted(problems))
        super().__init__("\n".join(str(p) for p in self.problems))


class IncludeFetchError(ConveyorError):
    """An `include: remote` file could not be fetched. The message is the short reason
    (`HTTP 404`, `timeout after 10s`); the include loader turns it into a Problem of the
    including file, so users see it inside a ConfigError."""

    exit_code = 2
    http_status = 422
    code = "include_unavailable"


class IncludeUnreachable(IncludeFetchError):
    """The host of an `include: remote` file cannot be reached (offline, timeout): the
    loader treats the include as unavailable (a warning; an error with --strict) instead
    of as a broken file."""


class UsageError(ConveyorError):
    """A command line asks for something impossible (unknown job, bad --var)."""

    exit_code = 2
    http_status = 400
    code = "bad_request"


class InvalidRef(UsageError):
    """A ref from a trigger (API, webhook, schedule, `--ref`) is not a branch or tag name by
    git's rules (conveyor.inputs); the message never holds the ref itself."""

    http_status = 422
    code = "invalid_ref"


class RefusedVariable(UsageError):
    """A trigger sets a variable that changes how a job's shell, loader or interpreter
    starts (`BASH_ENV`, `LD_PRELOAD`, `PATH`…: conveyor.inputs)."""

    http_status = 422
    code = "refused_variable"


class ConflictError(ConveyorError):
    """The request is well formed but the thing it names is not in a state that allows it
    (the job is not a manual job waiting to be played, the run is still running).

    The CLI exits 2 as for a usage error (the command line asked for something impossible
    now); the API answers 409."""

    exit_code = 2
    http_status = 409
    code = "conflict"


class RunCanceled(ConflictError):
    """A job of a run that was canceled (or whose cancel is requested) is asked to run:
    played or retried. A cancel is final; the message says what to do instead."""

    code = "run_canceled"


class RunEnding(ConflictError):
    """A play or retry reached a run as its last job ended, and the run's final record was
    not written within the wait for it (the server's queue): nothing was played or
    retried; asked again once the run has ended, it resumes the run."""

    code = "run_ending"


class StoreError(ConveyorError):
    """The run store or the log files cannot be read or written."""

    http_status = 503
    code = "store_unavailable"
    http_message = "The run store cannot be used right now; try again."


class GitError(ConveyorError):
    """git could not fetch, check out or answer about a repository (the message names the
    repository and what failed, never a token)."""

    http_status = 502
    code = "git_failed"


class WebhookRejected(ConveyorError):
    """A webhook delivery is refused; `http_status` and `code` (set per delivery) go into
    the error envelope."""

    http_status = 400
    code = "webhook_rejected"

    def __init__(self, message: str, *, http_status: int, code: str) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.code = code


class UpstreamError(ConveyorError):
    """An upstream (GitLab, GitHub, Jenkins, Slack) failed. `reason` is short and sanitized,
    e.g. "upstream 502", "invalid JSON"; it is what the API shows as an entry's `error`.
    `status_code` is the upstream's HTTP status, when it answered."""

    kind: str = "upstream_error"
    http_status = 502
    code = "upstream_error"

    def __init__(self, reason: str, *, status_code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_code = status_code


class UpstreamTimeout(UpstreamError):
    kind = "timeout"
    http_status = 504
    code = "upstream_timeout"


class UpstreamRateLimited(UpstreamError):
    kind = "rate_limited"
    http_status = 429
    code = "upstream_rate_limited"

    def __init__(self, reason: str, *, reset_at: datetime | None, status_code: int | None = None):
        super().__init__(reason, status_code=status_code)
        self.reset_at = reset_at


class UpstreamAuthError(UpstreamError):
    kind = "auth"


class UpstreamBadPayload(UpstreamError):
    kind = "bad_payload"


class UpstreamTooLarge(UpstreamBadPayload):
    """The answer's body is larger than the outbound client's cap (`limit_bytes`)."""

    def __init__(self, reason: str, *, limit_bytes: int, status_code: int | None = None) -> None:
        super().__init__(reason, status_code=status_code)
        self.limit_bytes = limit_bytes


class UpstreamUnreachable(UpstreamError):
    """No connection could be made, or it broke. `cause` names the transport error's class
    (`ConnectError`, `ReadError`), never its text, which may hold host details."""

    kind = "connection"

    def __init__(self, reason: str, *, cause: str) -> None:
        super().__init__(reason)
        self.cause = cause


class UpstreamAddressRefused(UpstreamUnreachable):
    """A guarded request (outbound.guard: `include: remote`) was not connected: the host
    resolves to an internal address (`address_kind`: loopback, private, link-local…) that no
    allow-list names."""

    kind = "address_refused"

    def __init__(self, address_kind: str) -> None:
        super().__init__(f"resolves to a {address_kind} address", cause="AddressRefused")
        self.address_kind = address_kind


class UpstreamRedirectError(UpstreamError):
    """A redirect the outbound client refuses to follow (too many, or not http/https)."""

    kind = "redirect"
