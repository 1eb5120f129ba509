"""Which addresses a destination may reach (the SSRF rule): only public unicast ones, unless the address is inside
`delivery.allow_private_networks`. IPv4 hidden inside IPv6 (mapped, compatible, 6to4, NAT64) is judged as the
IPv4 address it carries."""

from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network

# Named so that a refusal says why; `is_global` below catches every other reserved range as "reserved".
_KINDS: list[tuple[str, Network]] = [
    ("unspecified", ip_network("0.0.0.0/8")),
    ("loopback", ip_network("127.0.0.0/8")),
    ("private", ip_network("10.0.0.0/8")),
    ("private", ip_network("172.16.0.0/12")),
    ("private", ip_network("192.168.0.0/16")),
    ("link-local", ip_network("169.254.0.0/16")),  # cloud metadata: 169.254.169.254
    ("carrier-grade NAT", ip_network("100.64.0.0/10")),
    ("multicast", ip_network("224.0.0.0/4")),
    ("reserved", ip_network("240.0.0.0/4")),  # and 255.255.255.255
    ("unspecified", ip_network("::/128")),
    ("loopback", ip_network("::1/128")),
    ("private", ip_network("fc00::/7")),
    ("link-local", ip_network("fe80::/10")),
    ("site-local", ip_network("fec0::/10")),
    ("multicast", ip_network("ff00::/8")),
    # Not global, though this Python's `is_global` may not know it: local-use NAT64 (RFC 8215; the IPv4 address
    # it carries may sit at any of RFC 6052's offsets) and the rest of ::/8 (IPv4-translated ::ffff:0:a.b.c.d).
    ("reserved", ip_network("64:ff9b:1::/48")),
    ("reserved", ip_network("::/8")),
    # IETF protocol assignments (RFC 6890): this Python takes only 192.0.0.0/29 of them as not global.
    ("reserved", ip_network("192.0.0.0/24")),
]
_NAT64 = ip_network("64:ff9b::/96")
_COMPATIBLE = ip_network("::/96")  # deprecated IPv4-compatible form ::a.b.c.d


def embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, if it is one of the forms that carry one."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or (address in _COMPATIBLE and int(address) > 1):
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def refusal(address: Address) -> str | None:
    """Why a destination may not connect to `address` by default (None: a public unicast address)."""
    if isinstance(address, IPv6Address):
        carried = embedded_ipv4(address)
        if carried is not None:
            reason = refusal(carried)
            return f"{reason} (IPv4 inside IPv6)" if reason else None
        if address.teredo is not None:
            return "reserved (Teredo)"
    for kind, network in _KINDS:
        if address.version == network.version and address in network:
            return kind
    if address.is_multicast:
        return "multicast"
    if not address.is_global:
        return "reserved"
    return None


def allowed(address: Address, networks: Sequence[Network]) -> bool:
    """Inside one of the operator's `allow_private_networks` (an IPv4 address carried in IPv6 counts as itself)."""
    candidates: list[Address] = [address]
    if isinstance(address, IPv6Address) and (carried := embedded_ipv4(address)) is not None:
        candidates.append(carried)
    return any(c.version == n.version and c in n for c in candidates for n in networks)


def vet(host_address: str, networks: Sequence[Network], private_only: bool = False) -> str | None:
    """None when a destination may connect to this address, else the reason it may not. `private_only`: plain
    http:// without `allow_http`, which may go only to an allowed private network."""
    address = ip_address(host_address.split("%", 1)[0])  # a zone index (fe80::1%eth0) does not change the address
    if allowed(address, networks):
        return None
    if private_only:
        return f"{address} is not in allow_private_networks (plain http:// needs it, or delivery.allow_http)"
    reason = refusal(address)
    return None if reason is None else f"{address} is {reason}, not in allow_private_networks"
