"""The client address of a request, for budgets keyed by address (failed logins, anonymous
throttles).

`REMOTE_ADDR`, the address that connected, unless `WEBHOOKS["TRUSTED_PROXIES"]` says which
`X-Forwarded-For` entry to believe (shared/DESIGN.md, "Configuration"): a client can write any
`X-Forwarded-For` it likes, so reading it unasked lets every request pick a fresh address and
escape every bound.

- 0 (the default): `REMOTE_ADDR`; the header is ignored.
- N > 0: N proxies of yours stand in front, each appending the address it saw; the client is
  the N-th entry from the right (entries further left were written by the client).
- a list of CIDRs (["10.0.0.0/8", "2001:db8::/32"]): the proxies' networks. If `REMOTE_ADDR` is
  in one, the client is the rightmost entry of the header outside them.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from .conf import webhook_settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def trusted_networks(value: Any) -> list[Network]:
    """The networks of a CIDR-list `TRUSTED_PROXIES`. Raises ValueError for an entry that is
    not a network (the system check `webhooks.E007` reports it first)."""
    return [ipaddress.ip_network(str(cidr), strict=False) for cidr in value]


def _in(address: str, networks: list[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(request: Any) -> str:
    """The address `request` (a Django HttpRequest or a DRF Request) comes from, as
    `TRUSTED_PROXIES` says; "" when the server gave none."""
    meta = request.META
    remote = str(meta.get("REMOTE_ADDR") or "").strip()
    trusted = webhook_settings.TRUSTED_PROXIES
    if not trusted:
        return remote
    hops = [h.strip() for h in str(meta.get("HTTP_X_FORWARDED_FOR") or "").split(",")]
    hops = [h for h in hops if h]
    if isinstance(trusted, int):
        if not hops:
            return remote
        # Our N proxies wrote the last N entries; fewer entries: the leftmost is the client.
        return hops[-trusted] if len(hops) >= trusted else hops[0]
    networks = trusted_networks(trusted)
    if not _in(remote, networks):
        return remote  # not from one of our proxies: its header means nothing
    for hop in reversed(hops):
        if not _in(hop, networks):
            return hop
    return hops[0] if hops else remote
