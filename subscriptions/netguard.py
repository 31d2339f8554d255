"""Which destinations a webhook may be sent to (the SSRF guard).

A subscriber chooses the URL, so without a guard anyone with an API token could make our workers
call the cloud metadata service or an internal admin panel. The host is resolved once; every
address it resolves to must be globally routable; the sender then connects to the address checked
here, never resolving again, so a DNS answer that changes between check and use (rebinding) does
not reach an internal address.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from .conf import webhook_settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Networks that are not globally routable although `is_global` may not say so, and IPv6 forms
# that embed an IPv4 address (checked through the embedded address).
_EXTRA_BLOCKED = [
    ipaddress.ip_network("100.64.0.0/10"),  # carrier-grade NAT
    ipaddress.ip_network("192.0.0.0/24"),
    ipaddress.ip_network("198.18.0.0/15"),
    ipaddress.ip_network("0.0.0.0/8"),
    ipaddress.ip_network("240.0.0.0/4"),
    ipaddress.ip_network("fc00::/7"),  # unique local
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("fec0::/10"),  # deprecated site-local
    ipaddress.ip_network("2001:db8::/32"),
    ipaddress.ip_network("100::/64"),
]
_NAT64 = [ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48")]
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")

Resolver = Callable[[str, int], list[str]]


class BlockedDestination(ValueError):
    """The URL points somewhere webhooks may not go; the message says why."""


@dataclass(frozen=True)
class Destination:
    scheme: str
    host: str
    port: int
    address: str  # the checked address to connect to

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        address = sockaddr[0]
        if address not in addresses:
            addresses.append(address)
    return addresses


_resolver: Resolver = system_resolver


def set_resolver(resolver: Resolver | None) -> None:
    """Replace the DNS resolver (tests answer public names without the network)."""
    global _resolver
    _resolver = resolver or system_resolver


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped:
        return address.ipv4_mapped
    if any(address in net for net in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _SIX_TO_FOUR:
        return address.sixtofour
    if address.teredo:
        return address.teredo[1]
    # IPv4-compatible (::a.b.c.d), deprecated but still parsed by some stacks.
    if int(address) >> 32 == 0 and int(address) > 1:
        return ipaddress.IPv4Address(int(address))
    return None


def is_public_address(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None:
            return is_public_address(inner)
        if address.scope_id:
            return False
    if any(address in net for net in _EXTRA_BLOCKED if net.version == address.version):
        return False
    return address.is_global and not (
        address.is_multicast
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_unspecified
    )


def check_scheme(url: str) -> tuple[str, str, int]:
    """Split `url` into scheme, host and port, refusing what is never allowed."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    allowed = {"https", "http"} if webhook_settings.ALLOW_HTTP else {"https"}
    if scheme not in allowed:
        raise BlockedDestination(
            "Only https:// URLs are allowed."
            if scheme == "http"
            else f"Unsupported URL scheme {scheme!r}."
        )
    if parts.username or parts.password:
        raise BlockedDestination("URLs with credentials are not allowed; use a custom header.")
    host = parts.hostname
    if not host:
        raise BlockedDestination("The URL has no host.")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as exc:
        raise BlockedDestination("The URL has an invalid port.") from exc
    return scheme, host, port


def resolve_destination(url: str) -> Destination:
    """Resolve and check `url`; return the address to connect to or raise BlockedDestination."""
    scheme, host, port = check_scheme(url)
    try:
        addresses = _resolver(host, port)
    except (OSError, UnicodeError) as exc:
        raise BlockedDestination(f"The host {host!r} does not resolve.") from exc
    if not addresses:
        raise BlockedDestination(f"The host {host!r} does not resolve.")
    if not webhook_settings.ALLOW_PRIVATE_NETWORKS:
        for raw in addresses:
            address = ipaddress.ip_address(raw.split("%", 1)[0])
            if not is_public_address(address):
                raise BlockedDestination(
                    f"The host {host!r} resolves to {address}, which is not a public address."
                )
    return Destination(scheme=scheme, host=host, port=port, address=addresses[0])
