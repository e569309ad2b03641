"""Which addresses an outbound request may connect to, and a transport that connects only there.

Owns: applying conveyor.addresses' rule to fetches a pipeline file asks for (`include:
remote`): an internal address (`address_kind`) is refused unless the `AllowList` names the
host, the address or a network holding it. The check happens where the connection is made
(`GuardedTransport`: an httpx transport whose network backend resolves the host once,
checks every address it got, and connects only to addresses it checked), so a redirect is
checked like the first request and a second DNS answer cannot slip a different address in
(no time-of-check to time-of-use gap). Proxies of the environment are not used by it: a
proxy would resolve and connect where the check cannot see.
Must not: log, or put the fetched URL or a body into an error (the refusal names the kind
of address and how to allow it).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

import httpcore
import httpx

from conveyor.addresses import AllowList, address_kind
from conveyor.errors import UpstreamAddressRefused

__all__ = ["GuardedTransport"]

# httpcore's SOCKET_OPTION, spelled out (httpcore does not export it).
SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves each host once, refuses internal addresses the allow-list does not name,
    and connects to the address it checked."""

    def __init__(self, allow: AllowList) -> None:
        self._allow = allow
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's backend signature
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        import asyncio

        loop = asyncio.get_running_loop()
        try:
            found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError:
            raise httpcore.ConnectError("name resolution failed") from None
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in found]
        for address in addresses:
            kind = address_kind(address)
            if kind is not None and not self._allow.allows(host, address):
                raise UpstreamAddressRefused(kind)
        # Only addresses checked above are connected to, in the resolver's order (IPv6
        # then IPv4, say): the next one when a connection is refused or unreachable.
        failed: httpcore.ConnectError | None = None
        for address in dict.fromkeys(addresses):
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectError as exc:
                failed = exc
        raise failed or httpcore.ConnectError("name resolution failed")

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's backend signature
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise UpstreamAddressRefused("unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport (TLS settings of the environment, SNI and certificates checked
    against the URL's host) over `_GuardedBackend`."""

    def __init__(self, allow: AllowList, *, limits: httpx.Limits | None = None) -> None:
        limits = limits or httpx.Limits(max_connections=1, max_keepalive_connections=1)
        ssl_context = httpx.create_ssl_context(trust_env=True)
        super().__init__(verify=ssl_context, limits=limits)
        # httpx builds its pool without a way to pass a network backend: replace it by the
        # same pool over the guarded backend (the only private attribute touched).
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_GuardedBackend(allow),
        )
