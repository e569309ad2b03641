"""What callers of outbound HTTP need: the HttpClient Protocol, its policy and its answer.

Owns: the contract every implementation keeps (OutboundClient over httpx, the scripted fake
in tests/fakes/http_client.py; tests/integration/outbound/test_conformance.py checks both):
`request` answers a Reply for any status (deciding what a status means is the caller's), and
raises only these sanitized errors of conveyor.errors:
    UpstreamTimeout        the request's deadline (policy.timeout_s) passed
    UpstreamTooLarge       the body is larger than policy.max_body_bytes
    UpstreamRedirectError  more than policy.max_redirects redirects, or to a non-http URL
    UpstreamUnreachable    no connection, or it broke
Must not: know GitLab, GitHub, Jenkins or Slack, log, or put a URL, header or body into an
error message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from conveyor.outbound.retry import parse_retry_after

__all__ = ["ClientPolicy", "HttpClient", "Reply"]


@dataclass(frozen=True, slots=True)
class ClientPolicy:
    """How one client talks to servers.

    timeout_s is the deadline of one request as a whole (waiting for a connection slot,
    connecting, redirects, reading the body); max_redirects 0 answers a redirect to the
    caller as it is; slots bounds the requests in flight; trust_env applies the proxy and
    CA settings of the environment; headers go with every request.
    """

    timeout_s: float = 10.0
    max_body_bytes: int = 1024 * 1024
    max_redirects: int = 0
    slots: int = 8
    trust_env: bool = True
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Reply:
    """An answer: status, headers with lower-case names, the whole (decoded) body, and the
    `name=value` of each Set-Cookie (no client keeps cookies; a caller carries them)."""

    status_code: int
    headers: Mapping[str, str]
    body: bytes
    cookies: tuple[str, ...] = ()

    def retry_after_s(self, now: datetime) -> float | None:
        """Seconds the `Retry-After` header asks to wait (None: absent or unreadable)."""
        return parse_retry_after(self.headers.get("retry-after"), now=now)


class HttpClient(Protocol):
    """Sends requests under one ClientPolicy. `aclose()` when done."""

    @property
    def policy(self) -> ClientPolicy: ...

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        json: object = None,
        content: bytes | None = None,
    ) -> Reply:
        """Send one request (`json`, when not None, is the body, else `content` as it is);
        raise only the errors the module docstring lists."""
        ...

    async def aclose(self) -> None: ...
