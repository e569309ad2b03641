"""Which network addresses are internal, and the allow-list that opts some in. Pure.

Owns the rule for fetches a pipeline file asks for (`include: remote`; the connection is
made by `outbound.guard`): loopback, private (RFC 1918, CGNAT 100.64/10, unique local
fc00::/7), link-local (cloud metadata lives there), multicast, unspecified and reserved
addresses are internal, IPv4 and IPv6 alike, an IPv4-mapped IPv6 address
(`::ffff:127.0.0.1`) judged as the IPv4 address it carries (`address_kind`); an
`AllowList` of host names, addresses and networks (CIDR) lets named ones through. The
settings check their `remote_include_allow` with `parse_allow_list`, so a bad entry is a
configuration error at start.
Must not: resolve names or open sockets (ipaddress only).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["AllowList", "IPAddress", "address_kind", "parse_allow_list"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

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
