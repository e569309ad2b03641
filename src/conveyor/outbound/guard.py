"""Which addresses an outbound request may connect to, and a transport that connects only there.

Owns: the address rule for fetches a pipeline file asks for (`include: remote`): loopback,
private (RFC 1918, CGNAT, unique local), link-local (cloud metadata lives there),
multicast, unspecified and reserved addresses are refused, IPv4 and IPv6 alike, an
IPv4-mapped IPv6 address (`::ffff:127.0.0.1`) judged as the IPv4 address it carries;
unless an allow-list names the host, the address or a network holding it (`AllowList`).
The check happens where the connection is made (`GuardedTransport`: an httpx transport
whose network backend resolves the host once, checks every address it got, and connects to
the address it checked), so a redirect is checked like the first request and a second DNS
answer cannot slip a different address in (no time-of-check to time-of-use gap). Proxies of
the environment are not used by it: a proxy would resolve and connect where the check
cannot see.
Must not: log, or put the fetched URL or a body into an error (the refusal names the kind
of address and how to allow it).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field

import httpcore
import httpx

from conveyor.errors import UpstreamAddressRefused

__all__ = [
    "AllowList",
    "GuardedTransport",
    "address_kind",
    "parse_allow_list",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# httpcore's SOCKET_OPTION, spelled out (httpcore does not export it).
SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT: not public either


def address_kind(address: IPAddress) -> str | None:
    """What makes `address` internal ("loopback", "link-local", …), None for a public one."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private or address in _SHARED),
        ("reserved", address.is_reserved),
    )
    return next((kind for kind, is_kind in checks if is_kind), None)


@dataclass(frozen=True, slots=True)
class AllowList:
    """Hosts (by name, lower case) and networks whose internal addresses may be fetched."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()
    entries: tuple[str, ...] = field(default=(), compare=False)

    def allows(self, host: str, address: IPAddress) -> bool:
        if host.lower().rstrip(".") in self.hosts:
            return True
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)


def parse_allow_list(entries: Iterable[str]) -> AllowList:
    """An AllowList from entries that are each an address, a network (CIDR) or a host
    name; blank entries are skipped. Raises ValueError naming an entry that is none."""
    hosts: set[str] = set()
    networks: list[IPNetwork] = []
    kept: list[str] = []
    for raw in entries:
        entry = raw.strip()
        if not entry:
            continue
        kept.append(entry)
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
        except ValueError:
            if "/" in entry or not entry.replace("-", "").replace(".", "").isalnum():
                raise ValueError(
                    f"{entry!r} is not a host name, an address or a network (CIDR)"
                ) from None
            hosts.add(entry.lower().rstrip("."))
    return AllowList(frozenset(hosts), tuple(networks), tuple(kept))


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
        if not addresses:  # pragma: no cover - getaddrinfo answers an address or raises
            raise httpcore.ConnectError("name resolution failed")
        # The first address only: the one checked is the one connected to.
        return await self._inner.connect_tcp(
            str(addresses[0]),
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )

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
