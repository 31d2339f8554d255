"""Custom header rules: what a subscriber may set, and the headers the sender owns."""

from __future__ import annotations

import re

# RFC 7230 `token`: what a header name may be.
HEADER_NAME_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# Visible ASCII with inner spaces and tabs: no CR, LF or NUL (header injection), no leading or
# trailing whitespace (which `requests` refuses at send time).
HEADER_VALUE_RE = re.compile(r"^([\x21-\x7e]([\x20-\x7e\t]*[\x21-\x7e])?)?$")
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
