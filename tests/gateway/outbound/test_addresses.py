"""The SSRF rule as a function over a table of addresses: no test sends a packet to any of them."""

from ipaddress import ip_network

import pytest

from gateway.outbound.addresses import vet

REFUSED = [
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("10.0.0.1", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"),  # cloud metadata
    ("169.254.0.1", "link-local"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("100.127.255.254", "carrier-grade NAT"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "unspecified"),
    ("255.255.255.255", "reserved"),
    ("240.0.0.1", "reserved"),
    ("192.0.2.10", "reserved"),  # documentation range
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fc00::1", "private"),
    ("fd12:3456::1", "private"),
    ("fe80::1", "link-local"),
    ("fe80::1%eth0", "link-local"),
    ("fec0::1", "site-local"),
    ("ff02::1", "multicast"),
    ("::ffff:127.0.0.1", "loopback (IPv4 inside IPv6)"),
    ("::ffff:169.254.169.254", "link-local (IPv4 inside IPv6)"),
    ("::ffff:10.1.2.3", "private (IPv4 inside IPv6)"),
    ("::ffff:100.64.1.1", "carrier-grade NAT (IPv4 inside IPv6)"),
    ("::127.0.0.1", "loopback (IPv4 inside IPv6)"),
    ("64:ff9b::a9fe:a9fe", "link-local (IPv4 inside IPv6)"),  # NAT64 of 169.254.169.254
    ("2002:c0a8:0101::1", "private (IPv4 inside IPv6)"),  # 6to4 of 192.168.1.1
    ("2001:db8::1", "reserved"),  # documentation range
    ("64:ff9b:1::a9fe:a9fe", "reserved"),  # local-use NAT64: its IPv4 address may sit anywhere
    ("64:ff9b:1:a9fe:a9:fe00::", "reserved"),  # ... such as after a /48 prefix
    ("::ffff:0:7f00:1", "reserved"),  # IPv4-translated (SIIT) 127.0.0.1
    ("::1:0:0:0", "reserved"),  # the rest of ::/8 is no public unicast either
    ("192.0.0.8", "reserved"),  # IETF protocol assignments, past the /29 that Python 3.11 knows
    ("::ffff:192.0.0.8", "reserved (IPv4 inside IPv6)"),
]
PUBLIC = ["93.184.215.14", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "2002:0808:0808::1"]


@pytest.mark.parametrize(("address", "kind"), REFUSED)
def test_internal_addresses_are_refused_by_default(address: str, kind: str) -> None:
    reason = vet(address, [])
    assert reason is not None and f"is {kind}," in reason


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert vet(address, []) is None


def test_allow_private_networks_lets_exactly_those_through() -> None:
    allowed = [ip_network("127.0.0.0/8"), ip_network("10.1.0.0/16")]
    assert vet("127.0.0.1", allowed) is None
    assert vet("10.1.2.3", allowed) is None
    assert vet("::ffff:10.1.2.3", allowed) is None  # the same address, written as IPv6
    assert vet("10.2.0.1", allowed) is not None
    assert vet("::1", allowed) is not None  # IPv6 loopback is a network of its own
    assert vet("169.254.169.254", allowed) is not None


def test_plain_http_goes_only_to_an_allowed_private_network() -> None:
    allowed = [ip_network("127.0.0.0/8")]
    assert vet("127.0.0.1", allowed, private_only=True) is None
    assert vet("8.8.8.8", allowed, private_only=True) is not None
