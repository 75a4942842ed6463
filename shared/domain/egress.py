"""Where a production broker may connect: public unicast addresses only, plus the networks an operator allows;
cloud metadata never. Pure: an address (or a host as written in a URL) in, the reason for a refusal out.

The adapter (`shared/adapters/egress.py`) applies this to every address a name resolves to, at connect time.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata.goog", "metadata"})
# GCP/AWS/Azure, AWS ECS, AWS IPv6, Alibaba: refused even inside an allowed network.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)
SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")  # CGNAT: can route to internal workloads
UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
NEVER_PUBLIC = (ipaddress.ip_network("fec0::/10"), ipaddress.ip_network("::/96"))  # site-local; IPv4-compatible


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form carries (mapped ::ffff:a.b.c.d, 6to4, NAT64), which is where it leads."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def kind(ip: IPAddress) -> str | None:
    """What sort of non-public address `ip` is, or None for a public unicast address."""
    checks = (
        (ip in METADATA_ADDRESSES, "a cloud metadata address"),
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip in SHARED_ADDRESS_SPACE, "a shared (CGNAT) address"),
        (ip in UNIQUE_LOCAL, "a unique-local address"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_private, "a private address"),
        (not ip.is_global or any(ip in network for network in NEVER_PUBLIC), "a non-public address"),
    )
    return next((label for matched, label in checks if matched), None)


@dataclass(frozen=True)
class EgressPolicy:
    """`allowed_networks`: private networks an operator lets the broker reach (a provider inside the VPC)."""

    allowed_networks: tuple[IPNetwork, ...] = ()

    def refusal(self, address: str) -> str | None:
        """Why the broker may not connect to `address` (an IP as a resolver returns it), or None."""
        ip = ipaddress.ip_address(address.strip("[]").split("%", 1)[0])  # an IPv6 zone id names no other host
        forms = [*filter(None, [embedded_ipv4(ip)]), ip]  # where it leads first: the clearer reason
        if any(form in METADATA_ADDRESSES for form in forms):
            return "a cloud metadata address"
        if any(form in network for form in forms for network in self.allowed_networks):
            return None
        return next(filter(None, (kind(form) for form in forms)), None)

    def host_refusal(self, host: str) -> str | None:
        """Without resolving: a metadata or loopback name, or an IP literal that `refusal` refuses."""
        name = host.strip("[]").rstrip(".").lower()
        if name in METADATA_HOSTS:
            return "a cloud metadata host"
        if name == "localhost" or name.endswith(".localhost"):
            return self.refusal("127.0.0.1") and "a loopback host"
        try:
            return self.refusal(name)
        except ValueError:  # a name: its addresses are checked when the broker connects
            return None

    def url_refusal(self, url: str) -> str | None:
        host = urlsplit(url).hostname
        return self.host_refusal(host) if host else None


def parse_networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(value, strict=False) for value in values)
