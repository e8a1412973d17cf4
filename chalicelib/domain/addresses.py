"""Which network addresses PayFlow may send a merchant's webhooks to: only globally routable
ones, however they are written.

`ipaddress`'s `is_global` alone is not enough: it calls 6to4 (2002::/16) global whatever IPv4
address it embeds, and site-local fec0::/10 too. So an IPv6 address passes only if it is global
and so is every IPv4 address it carries (IPv4-mapped, IPv4-compatible, 6to4, Teredo, NAT64):
`[2002:a9fe:a9fe::]` is the metadata address 169.254.169.254 and is refused like it.
"""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = (
    ipaddress.IPv6Network("64:ff9b::/96"),
    ipaddress.IPv6Network("64:ff9b:1::/48"),
)
"""Translators to IPv4 (RFC 6052, RFC 8215): routed by the local network, never global."""
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_ALSO_NOT_GLOBAL = (
    ipaddress.IPv4Network("100.64.0.0/10"),
    ipaddress.IPv4Network("192.0.0.0/24"),
    ipaddress.IPv4Network("192.88.99.0/24"),
    ipaddress.IPv6Network("2001:db8::/32"),
    ipaddress.IPv6Network("3fff::/20"),
    ipaddress.IPv6Network("5f00::/16"),
    ipaddress.IPv6Network("fec0::/10"),
)
"""Ranges the IANA registries mark not globally reachable that `ipaddress` classifies
differently across Python versions (3.11 calls 192.0.0.8 global; 3.13 does not): listed here
so the rule is the same on every runtime. Refusing the two anycast hosts of 192.0.0.0/24 and
the 6to4 relay range too is deliberate: no webhook receiver lives there."""


def parse_address(text: str) -> IPAddress:
    """An address from its text, with any IPv6 zone (`fe80::1%eth0`) dropped; ValueError if
    `text` is not an address."""
    return ipaddress.ip_address(text.split("%", 1)[0])


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries, by every standard way of carrying one."""
    found: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    if ip in _IPV4_COMPATIBLE or any(ip in network for network in _NAT64):
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def _global(ip: IPAddress) -> bool:
    return (
        ip.is_global
        and not any(ip in network for network in _ALSO_NOT_GLOBAL if network.version == ip.version)
        and not ip.is_multicast
        and not ip.is_reserved
        and not ip.is_private
        and not ip.is_loopback
        and not ip.is_link_local
        and not ip.is_unspecified
        and not (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local)
    )


def is_global_address(address: str | IPAddress) -> bool:
    """True only for a globally routable unicast address that embeds no other kind."""
    ip = parse_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address):
        if any(ip in network for network in _NAT64):
            return False
        if not all(_global(v4) for v4 in embedded_ipv4(ip)):
            return False
    return _global(ip)
