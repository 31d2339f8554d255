"""Custom header rules: what a subscriber may set, and the headers the sender owns."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# RFC 7230 `token`: what a header name may be.
HEADER_NAME_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
# Visible ASCII with inner spaces and tabs: no CR, LF or NUL (header injection), no leading or
# trailing whitespace (which `requests` refuses at send time).
HEADER_VALUE_RE = re.compile(r"^([\x21-\x7e]([\x20-\x7e\t]*[\x21-\x7e])?)?\Z")
# Headers the pipeline writes itself, or that belong to the HTTP framing: a subscriber setting
# them would break signatures, content negotiation or the connection.
RESERVED_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "content-encoding",
        "host",
        "user-agent",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
        "expect",
    }
)
RESERVED_HEADER_PREFIXES = ("webhook-", "proxy-")


def is_reserved_header(name: str) -> bool:
    lowered = name.lower()
    return lowered in RESERVED_HEADERS or lowered.startswith(RESERVED_HEADER_PREFIXES)


# What the API and the admin show in place of every custom header value: they are often
# credentials (Authorization, API keys), so they are write-only. Sent back unchanged, the mask
# keeps the stored value. It can never be a real value: values are printable ASCII.
HEADER_MASK = "\u2022\u2022\u2022\u2022"


def origin(url: str) -> tuple[str, str, int | None]:
    """The origin of `url` (RFC 6454 §4): scheme and host in lower case, and the port, the
    scheme's default when none is written. A malformed port counts as its own origin."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is None:
        port = _DEFAULT_PORTS.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


_DEFAULT_PORTS = {"http": 80, "https": 443}


def mask_headers(headers: dict[str, str]) -> dict[str, str]:
    """`headers` with every value replaced by `HEADER_MASK` (the names stay visible)."""
    return {name: HEADER_MASK for name in headers}


def unmask_headers(new: dict[str, str], stored: dict[str, str]) -> dict[str, str]:
    """`new` with each value equal to `HEADER_MASK` replaced by the stored value of that header
    (same name, any case). Raises ValueError naming a masked header that has no stored value."""
    by_lower = {name.lower(): value for name, value in (stored or {}).items()}
    result = {}
    for name, value in new.items():
        if value == HEADER_MASK:
            if name in (stored or {}):
                value = stored[name]
            elif name.lower() in by_lower:
                value = by_lower[name.lower()]
            else:
                raise ValueError(
                    f"The header {name!r} has no stored value to keep: send its value."
                )
        result[name] = value
    return result
