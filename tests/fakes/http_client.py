"""A scripted HttpClient (conveyor.outbound.base): answers come from a function, no network.

`ScriptedHttpClient(policy, answer)` calls `answer(request)` for every request (and every
redirect it follows) with the same Request and Answer types the loopback fake server uses
(tests/fakes/upstreams/server.py), so one scenario drives both. It keeps the Protocol's
contract without waiting: an Answer with action "hang" raises UpstreamTimeout at once,
"reset" UpstreamUnreachable, "huge" (or a body over the cap) UpstreamTooLarge; 3xx answers
with a Location are followed up to policy.max_redirects. `requests` records what was sent.
tests/integration/outbound/test_conformance.py runs it against the same suite as the real
client.
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import Callable, Mapping
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

from conveyor.errors import (
    UpstreamRedirectError,
    UpstreamTimeout,
    UpstreamTooLarge,
    UpstreamUnreachable,
)
from conveyor.outbound.base import ClientPolicy, Reply
from tests.fakes.upstreams.server import Answer, Request

__all__ = ["ScriptedHttpClient"]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class ScriptedHttpClient:
    def __init__(self, policy: ClientPolicy, answer: Callable[[Request], Answer]) -> None:
        self._policy = policy
        self._answer = answer
        self.requests: list[Request] = []
        self.is_closed = False

    @property
    def policy(self) -> ClientPolicy:
        return self._policy

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
        if params:
            url = f"{url}{'&' if '?' in url else '?'}{urlencode(dict(params))}"
        sent = {**{k.lower(): v for k, v in self._policy.headers.items()}}
        sent.update({k.lower(): v for k, v in (headers or {}).items()})
        body = (content or b"") if json is None else jsonlib.dumps(json).encode()
        for _ in range(self._policy.max_redirects + 1):
            answer = self._send(method, url, sent, body)
            location = answer.headers.get("Location")
            if answer.status not in _REDIRECTS or not location or not self._policy.max_redirects:
                return self._reply(answer)
            url = urljoin(url, location)
            if urlsplit(url).scheme not in ("http", "https"):
                raise UpstreamRedirectError("redirected to a URL that is not http or https")
        raise UpstreamRedirectError(f"more than {self._policy.max_redirects} redirects")

    def _send(self, method: str, url: str, headers: dict[str, str], body: bytes) -> Answer:
        parts = urlsplit(url)
        request = Request(method, parts.path, dict(parse_qsl(parts.query)), dict(headers), body)
        self.requests.append(request)
        answer = self._answer(request)
        if answer.action == "hang":
            raise UpstreamTimeout(f"timeout after {self._policy.timeout_s:g}s")
        if answer.action == "reset":
            raise UpstreamUnreachable("connection failed", cause="RemoteProtocolError")
        return answer

    def _reply(self, answer: Answer) -> Reply:
        limit = self._policy.max_body_bytes
        if answer.action == "huge" or len(answer.body) > limit:
            raise UpstreamTooLarge(
                "response too large", limit_bytes=limit, status_code=answer.status
            )
        headers = {name.lower(): value for name, value in answer.headers.items()}
        headers["content-length"] = str(len(answer.body))
        cookie = headers.get("set-cookie")
        cookies = () if cookie is None else (cookie.split(";", 1)[0].strip(),)
        return Reply(answer.status, headers, answer.body, cookies)

    async def aclose(self) -> None:
        self.is_closed = True
