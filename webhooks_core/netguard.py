"""Which destinations a webhook may be sent to (the SSRF guard).

A subscriber chooses the URL, so without a guard anyone with an API token could make our workers
call the cloud metadata service or an internal admin panel. The host is resolved once; every
address it resolves to must be globally routable; the sender then connects to the address checked
here, never resolving again, so a DNS answer that changes between check and use (rebinding) does
not reach an internal address.

Host names go on the wire in ASCII: internationalized labels as IDNA 2008 A-labels (`xn--…`,
RFC 5890/5891, after the UTS #46 mapping that browsers apply), for the lookup, the `Host`
header and TLS alike (RFC 3986 §3.2.2). What the user typed is kept in the subscription.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import idna

from .conf import webhook_settings
from .lookups import LookupTimeout, call_with_timeout

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Networks that are not globally routable although `is_global` may not say so, and IPv6 forms
# that embed an IPv4 address (checked through the embedded address).
_EXTRA_BLOCKED = [
    ipaddress.ip_network("100.64.0.0/10"),  # carrier-grade NAT
    ipaddress.ip_network("192.0.0.0/24"),  # IETF protocol assignments
    ipaddress.ip_network("198.18.0.0/15"),  # benchmarking
    ipaddress.ip_network("0.0.0.0/8"),
    ipaddress.ip_network("240.0.0.0/4"),
    ipaddress.ip_network("224.0.0.0/4"),  # multicast (`is_global` says True)
    ipaddress.ip_network("fc00::/7"),  # unique local
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("fec0::/10"),  # deprecated site-local
    ipaddress.ip_network("ff00::/8"),  # multicast (`is_global` says True for ff0e::)
    ipaddress.ip_network("2001:db8::/32"),
    ipaddress.ip_network("100::/64"),  # discard-only
    ipaddress.ip_network("64:ff9b:1::/48"),  # local-use NAT64: never global
    ipaddress.ip_network("2001::/32"),  # Teredo: the real peer is hidden behind a relay
]
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")

# WHATWG "ends in a number": a host whose last label is numeric is an IPv4 address in one of
# inet_aton's forms (2130706433, 0x7f.1, 127.1, 0177.0.0.1), never a DNS name.
_NUMERIC_LABEL = re.compile(r"^(0[xX][0-9a-fA-F]*|[0-9]+)\Z")

Resolver = Callable[[str, int], list[str]]


class BlockedDestination(ValueError):
    """The URL points somewhere webhooks may not go; the message says why."""


class InvalidURL(BlockedDestination):
    """The URL cannot be used at all: it does not parse, has no host or no valid port, or its
    host is no valid name (e.g. an internationalized label IDNA refuses)."""


class ResolutionTimeout(LookupTimeout):
    """The host's lookup did not finish within the time the caller gave it."""


@dataclass(frozen=True)
class Destination:
    scheme: str
    host: str  # as on the wire: A-labels, lower case, a trailing dot kept as typed
    port: int
    address: str  # the checked address to connect to

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"

    @property
    def tls_name(self) -> str:
        """The name for SNI and certificate matching: without the trailing dot of an absolute
        name (RFC 6066 §3: "HostName" is given without a trailing dot; certificates name hosts
        without one, RFC 6125 §6.2.1)."""
        return self.host.rstrip(".")


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


_resolver: Resolver = system_resolver


def set_resolver(resolver: Resolver | None) -> None:
    """Replace the DNS resolver (tests answer public names without the network)."""
    global _resolver
    _resolver = resolver or system_resolver


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address that an IPv6 form carries (mapped, translated, NAT64, 6to4, compatible)."""
    if address.ipv4_mapped:
        return address.ipv4_mapped
    value = int(address)
    if value >> 32 == 0xFFFF0000:  # ::ffff:0:a.b.c.d, IPv4-translated (SIIT)
        return ipaddress.IPv4Address(value & 0xFFFFFFFF)
    if address in _NAT64:
        return ipaddress.IPv4Address(value & 0xFFFFFFFF)
    if address in _SIX_TO_FOUR:
        return address.sixtofour
    # IPv4-compatible (::a.b.c.d), deprecated but still parsed by some stacks; `::` and `::1`
    # are themselves unspecified and loopback.
    if value >> 32 == 0 and value > 1:
        return ipaddress.IPv4Address(value)
    return None


def is_public_address(address: IPAddress) -> bool:
    """True only for a globally routable unicast address, looking through embedded IPv4."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return False
        inner = embedded_ipv4(address)
        if inner is not None:
            return is_public_address(inner)
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


def parse_ipv4_literal(host: str) -> ipaddress.IPv4Address | None:
    """The address of a host written as an IPv4 number in any form inet_aton accepts.

    None when the host is a name. Raises BlockedDestination for a host that ends in a number but
    is no valid address (`1.2.3.4.5`, `0x1g`), since resolvers disagree on what those mean.
    """
    labels = host.rstrip(".").split(".") if host.rstrip(".") else [host]
    if not _NUMERIC_LABEL.fullmatch(labels[-1]):
        return None
    try:
        if len(labels) > 4 or not all(_NUMERIC_LABEL.fullmatch(label) for label in labels):
            raise ValueError(host)
        numbers = [_parse_number(label) for label in labels]
        *head, last = numbers
        if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
            raise ValueError(host)
        value = last
        for index, number in enumerate(head):
            value += number << (8 * (3 - index))
        return ipaddress.IPv4Address(value)
    except ValueError as exc:
        raise BlockedDestination(f"The host {host!r} is not a valid address.") from exc


def _parse_number(label: str) -> int:
    if label[:2].lower() == "0x":
        return int(label[2:] or "0", 16)
    if len(label) > 1 and label.startswith("0"):
        return int(label, 8)
    return int(label, 10)


def _literal_address(host: str) -> IPAddress | None:
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host)
        except ValueError as exc:
            raise BlockedDestination(f"The host {host!r} is not a valid address.") from exc
    return parse_ipv4_literal(host)


def check_scheme(url: str) -> tuple[str, str, int]:
    """Split `url` into scheme, host and port, refusing what is never allowed."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError as exc:  # e.g. an unclosed "[" of an IPv6 literal
        raise InvalidURL(f"The URL does not parse: {exc}") from exc
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
    if not host:
        raise InvalidURL("The URL has no host.")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as exc:
        raise InvalidURL("The URL has an invalid port.") from exc
    return scheme, host, port


def wire_host(host: str) -> str:
    """`host` in the ASCII form used on the wire: each internationalized label as its IDNA 2008
    A-label, after the UTS #46 mapping (case folding, full-width forms, ideographic full stops).

    ASCII hosts come back unchanged (an `_` in a label is legal in DNS, though not in IDNA), as
    do the trailing dot of an absolute name and an IP literal. Raises InvalidURL for a label
    IDNA refuses (a symbol such as U+2603, a bad joiner, a label over 63 octets).
    """
    if host.isascii():
        return host
    try:
        mapped = idna.uts46_remap(host, std3_rules=False, transitional=False)
        labels = [
            label if label.isascii() else idna.alabel(label).decode("ascii")
            for label in mapped.split(".")
        ]
    except (idna.IDNAError, UnicodeError) as exc:
        raise InvalidURL(f"The host {host!r} is not a valid domain name: {exc}") from exc
    wire = ".".join(labels)
    if len(wire.rstrip(".")) > 253:  # RFC 1035 §2.3.4, in presentation form
        raise InvalidURL(f"The host {host!r} is too long.")
    return wire


def resolve_destination(url: str, *, timeout: float | None = None) -> Destination:
    """Resolve and check `url`; return the address to connect to or raise BlockedDestination.

    Address literals, in whatever form, are parsed here and never handed to the resolver, so a
    resolver (or a test stub) cannot give them another meaning. The resolver is asked for the
    host's wire form (`wire_host`). With `timeout` (seconds), the lookup runs on a helper
    thread and ResolutionTimeout is raised when it has not answered in time (see
    `webhooks_core.lookups`); without it, the lookup runs in the calling thread.
    """
    scheme, typed, port = check_scheme(url)
    host = wire_host(typed)
    literal = _literal_address(host)
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            if timeout is None:
                addresses = _resolver(host, port)
            else:
                addresses = call_with_timeout(_resolver, host, port, timeout=timeout)
        except LookupTimeout as exc:
            raise ResolutionTimeout(
                f"The host {typed!r} did not resolve within {timeout:g} s."
            ) from exc
        except (OSError, UnicodeError) as exc:
            raise BlockedDestination(f"The host {typed!r} does not resolve.") from exc
        if not addresses:
            raise BlockedDestination(f"The host {typed!r} does not resolve.")
    parsed: list[IPAddress] = []
    for raw in addresses:
        try:
            parsed.append(ipaddress.ip_address(str(raw)))
        except ValueError as exc:
            raise BlockedDestination(f"The host {typed!r} resolves to no valid address.") from exc
    if not webhook_settings.ALLOW_PRIVATE_NETWORKS:
        # Every address is checked, not only the first: the one connected to must be one of them.
        for address in parsed:
            if not is_public_address(address):
                raise BlockedDestination(
                    f"The host {typed!r} resolves to {address}, which is not a public address."
                )
    return Destination(scheme=scheme, host=host, port=port, address=str(parsed[0]))
