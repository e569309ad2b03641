"""conveyor.addresses: the internal-address rule and the allow-list (outbound.guard, which
applies them where connections are made, is attacked in
tests/integration/security/test_edges_remote.py)."""

from __future__ import annotations

import ipaddress

import pytest

from conveyor.addresses import address_kind, parse_allow_list


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("::ffff:169.254.169.254", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "private"),
        ("fd00::1", "private"),
        ("::ffff:10.0.0.1", "private"),
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
        ("::ffff:8.8.8.8", None),
    ],
)
def test_address_kind(address: str, kind: str | None) -> None:
    assert address_kind(ipaddress.ip_address(address)) == kind


def test_allow_list_by_network_address_and_name() -> None:
    allow = parse_allow_list(["10.0.0.0/8", " 127.0.0.1 ", "", "Git.LAN.", "[::1]"])
    assert allow.allows("x", ipaddress.ip_address("10.2.3.4"))
    assert allow.allows("x", ipaddress.ip_address("::ffff:10.2.3.4"))
    assert allow.allows("x", ipaddress.ip_address("127.0.0.1"))
    assert allow.allows("x", ipaddress.ip_address("::1"))
    assert allow.allows("git.lan", ipaddress.ip_address("192.168.1.1"))
    assert not allow.allows("x", ipaddress.ip_address("127.0.0.2"))
    assert not allow.allows("other.lan", ipaddress.ip_address("192.168.1.1"))


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "a b", "http://x", "x/y"])
def test_allow_list_refuses_what_is_no_host_address_or_network(entry: str) -> None:
    with pytest.raises(ValueError, match="is not a host name, an address or a network"):
        parse_allow_list([entry])
