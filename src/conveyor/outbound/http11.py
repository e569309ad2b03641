"""Http11Client: a lean HttpClient (conveyor.outbound.base) on asyncio protocols and httptools,
for callers that send many small requests: the monitor's sync (10,000 targets a tick).

Owns: HTTP/1.1 over plain TCP or TLS (the default CA store; `SSL_CERT_FILE`/`SSL_CERT_DIR`
as OpenSSL reads them), idle keep-alive connections kept per origin, `policy.slots`
requests in flight, one deadline over the whole request (slot, connect, redirects, body),
the body cap (the declared Content-Length first, then the bytes as they arrive, decoded
for gzip/deflate), redirects as far as the policy allows (Authorization and Cookie dropped
when the origin changes), and the same sanitized errors as OutboundClient. A GET whose
reused connection turns out closed before any answer byte is sent again once on a new
connection (the server closed it while idle).
Measured reason (docs/benchmarks.md, "Monitor sync: 10,000 targets"): httpx + httpcore
spend about 1 ms of CPU per request here, this client about 0.06 ms.
Must not: use a proxy (a policy with `trust_env` is refused: OutboundClient serves those),
keep cookies, retry anything else, decide what a status means, or log.
"""

from __future__ import annotations

import asyncio
import ssl
import zlib
from collections.abc import Mapping
from urllib.parse import quote, urlencode, urljoin, urlsplit

import httptools
import orjson

from conveyor.errors import (
    UpstreamRedirectError,
    UpstreamTimeout,
    UpstreamTooLarge,
    UpstreamUnreachable,
)
from conveyor.outbound.base import ClientPolicy, Reply

__all__ = ["Http11Client"]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_SAFE_PATH = "/%:@!$&'()*+,;=-._~"  # kept as they are in a request target
_DEFAULT_PORTS = {"http": 80, "https": 443}
Origin = tuple[str, str, int]  # scheme, host, port


class _TooLarge(Exception):
    pass


class _Closed(ConnectionError):
    """The connection ended before an answer; `is_unanswered`: not one byte of it came."""

    def __init__(self, *, is_unanswered: bool) -> None:
        super().__init__("connection closed")
        self.is_unanswered = is_unanswered


class _Connection(asyncio.Protocol):
    """One keep-alive connection: sends a request, parses its answer with httptools."""

    def __init__(self, max_body_bytes: int) -> None:
        self.max_body_bytes = max_body_bytes
        self.transport: asyncio.Transport | None = None
        self.is_closed = False
        self._parser = httptools.HttpResponseParser(self)
        self._answer: asyncio.Future[Reply] | None = None
        self._reset()

    def _reset(self) -> None:
        self._headers: dict[str, str] = {}
        self._cookies: list[str] = []
        self._chunks: list[bytes] = []
        self._size = 0
        self._has_bytes = False
        self._is_headed = False
        self._is_kept_alive = False
        self._decoder: zlib._Decompress | None = None

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream transport

    def data_received(self, data: bytes) -> None:
        self._has_bytes = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(ConnectionError("protocol upgrade"))
        except httptools.HttpParserError as exc:
            # An exception in a callback arrives as a parser error caused by it.
            cause = exc.__cause__ or exc.__context__
            self._fail(cause if isinstance(cause, _TooLarge | zlib.error) else exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.is_closed = True
        if self._is_headed and exc is None and not self._parser.should_keep_alive():
            self.on_message_complete()  # a body that ends with the connection
        self._fail(_Closed(is_unanswered=not self._has_bytes))

    # -- httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        if key == "set-cookie":
            self._cookies.append(text.split(";", 1)[0].strip())
        seen = self._headers.get(key)
        self._headers[key] = text if seen is None else f"{seen}, {text}"

    def on_headers_complete(self) -> None:
        self._is_headed = True
        declared = self._headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            raise _TooLarge
        encoding = self._headers.get("content-encoding", "").strip().lower()
        if encoding in ("gzip", "deflate"):
            self._decoder = zlib.decompressobj(47 if encoding == "gzip" else 15)

    def on_body(self, body: bytes) -> None:
        if self._decoder is not None:
            body = self._decoder.decompress(body, self.max_body_bytes + 1 - self._size)
        self._size += len(body)
        if self._size > self.max_body_bytes:
            raise _TooLarge
        self._chunks.append(body)

    def on_message_complete(self) -> None:
        answer = self._answer
        if answer is None or answer.done():
            return
        # Asked here: once the parser returns, it has reset for the next message.
        self._is_kept_alive = self._parser.should_keep_alive()
        status = self._parser.get_status_code()
        body = b"".join(self._chunks)
        answer.set_result(Reply(status, self._headers, body, tuple(self._cookies)))

    # -- use
    def send(self, head: bytes, body: bytes) -> asyncio.Future[Reply]:
        """Write one request (the connection is made: `connection_made` ran)."""
        self._reset()
        self._answer = asyncio.get_running_loop().create_future()
        if self.transport is None or self.is_closed:
            self._answer.set_exception(_Closed(is_unanswered=True))
        else:
            self.transport.write(head + body if body else head)
        return self._answer

    def is_reusable(self) -> bool:
        return not self.is_closed and self._is_kept_alive

    def _fail(self, exc: BaseException) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(exc)
        self.close()

    def close(self) -> None:
        self.is_closed = True
        if self.transport is not None:
            self.transport.abort()


class Http11Client:
    """HttpClient on asyncio + httptools. Made outside a running loop is fine: nothing is
    bound to a loop before the first request."""

    def __init__(self, policy: ClientPolicy) -> None:
        if policy.trust_env:
            raise ValueError("Http11Client uses no proxy: give it a policy with trust_env=False")
        self._policy = policy
        self._slots = asyncio.Semaphore(policy.slots)
        self._idle: dict[Origin, list[_Connection]] = {}
        self._tls: ssl.SSLContext | None = None
        self._extra = "".join(f"{k}: {v}\r\n" for k, v in _checked(policy.headers).items())

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
        policy = self._policy
        if params:
            url += ("&" if "?" in url else "?") + urlencode(params)
        body = orjson.dumps(json) if json is not None else content or b""
        sent = dict(_checked(headers or {}))
        if json is not None:
            sent["Content-Type"] = "application/json"
        try:
            async with asyncio.timeout(policy.timeout_s), self._slots:
                return await self._follow(method, url, sent, body)
        except TimeoutError:
            raise UpstreamTimeout(f"timeout after {policy.timeout_s:g}s") from None
        except _TooLarge:
            raise UpstreamTooLarge(
                "response too large", limit_bytes=policy.max_body_bytes
            ) from None
        except (OSError, httptools.HttpParserError, zlib.error, ssl.SSLError) as exc:
            name = type(exc).__name__  # its text may name the host: only its class is kept
            raise UpstreamUnreachable("connection failed", cause=name) from None

    async def _follow(self, method: str, url: str, headers: dict[str, str], body: bytes) -> Reply:
        """Send, then follow redirects as far as the policy allows."""
        for _ in range(self._policy.max_redirects + 1):
            reply = await self._send(method, url, headers, body)
            location = reply.headers.get("location")
            if reply.status_code not in _REDIRECTS or not location:
                return reply
            if self._policy.max_redirects == 0:
                return reply
            target = urljoin(url, location)
            if urlsplit(target).scheme not in _DEFAULT_PORTS:
                raise UpstreamRedirectError("redirected to a URL that is not http or https")
            if _origin(target) != _origin(url):  # never carry credentials to another host
                headers = {
                    k: v for k, v in headers.items() if k.lower() not in ("authorization", "cookie")
                }
            if reply.status_code == 303 or (reply.status_code in (301, 302) and method == "POST"):
                method, body = "GET", b""
                headers.pop("Content-Type", None)
            url = target
        raise UpstreamRedirectError(f"more than {self._policy.max_redirects} redirects")

    async def _send(self, method: str, url: str, headers: Mapping[str, str], body: bytes) -> Reply:
        parts = urlsplit(url)
        if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise UpstreamRedirectError("redirected to a URL that is not http or https")
        origin = _origin(url)
        target = quote(parts.path or "/", safe=_SAFE_PATH)
        if parts.query:
            target += "?" + quote(parts.query, safe=_SAFE_PATH + "?")
        name = f"[{origin[1]}]" if ":" in origin[1] else origin[1]  # an IPv6 address
        host = name if origin[2] == _DEFAULT_PORTS[origin[0]] else f"{name}:{origin[2]}"
        lines = [f"{method} {target} HTTP/1.1\r\nHost: {host}\r\n", self._extra]
        lines += [f"{k}: {v}\r\n" for k, v in headers.items()]
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}\r\n")
        head = ("".join(lines) + "\r\n").encode("latin-1")
        while True:
            connection, is_reused = await self._connection(origin)
            try:
                reply = await connection.send(head, body)
            except _Closed as exc:
                if is_reused and exc.is_unanswered and method == "GET":
                    continue  # closed by the server while idle: once more on a new one
                raise
            except BaseException:
                connection.close()  # a deadline or a cancel mid-answer: its state is unknown
                raise
            if connection.is_reusable():
                self._idle.setdefault(origin, []).append(connection)
            else:
                connection.close()
            return reply

    async def _connection(self, origin: Origin) -> tuple[_Connection, bool]:
        idle = self._idle.get(origin)
        while idle:
            connection = idle.pop()
            if not connection.is_closed:
                return connection, True
        scheme, host, port = origin
        tls = None
        if scheme == "https":
            if self._tls is None:
                self._tls = ssl.create_default_context()
            tls = self._tls
        loop = asyncio.get_running_loop()
        limit = self._policy.max_body_bytes
        _, connection = await loop.create_connection(
            lambda: _Connection(limit), host, port, ssl=tls, server_hostname=host if tls else None
        )
        return connection, False

    async def aclose(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()


def _origin(url: str) -> Origin:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme, 0)


def _checked(headers: Mapping[str, str]) -> Mapping[str, str]:
    """Headers as given; a line break in a name or value would start a header of its own."""
    for name, value in headers.items():
        if any(c in name or c in value for c in "\r\n\0"):
            raise ValueError(f"header {name!r}: a line break or NUL in a header is refused")
    return headers
