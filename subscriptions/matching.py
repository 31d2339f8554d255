"""Event type names and the filters that subscriptions use to pick them.

A filter is an exact name (`order.created`), a prefix wildcard (`order.*`, matching every name
below `order.` at any depth) or `*` (everything).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

EVENT_TYPE_MAX_LENGTH = 255
EVENT_TYPE_RE = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
FILTER_RE = re.compile(r"^(\*|[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*(\.\*)?)$")


def is_valid_event_type(name: str) -> bool:
    return len(name) <= EVENT_TYPE_MAX_LENGTH and bool(EVENT_TYPE_RE.match(name))


def is_valid_filter(pattern: str) -> bool:
    return len(pattern) <= EVENT_TYPE_MAX_LENGTH and bool(FILTER_RE.match(pattern))


def is_wildcard(pattern: str) -> bool:
    return pattern == "*" or pattern.endswith(".*")


def patterns_matching(event_type: str) -> frozenset[str]:
    """Every filter that selects `event_type`: `a.b.c` gives `*`, `a.*`, `a.b.*`, `a.b.c`."""
    parts = event_type.split(".")
    prefixes = {".".join(parts[:i]) + ".*" for i in range(1, len(parts))}
    return frozenset({"*", event_type, *prefixes})


def filters_match(filters: Iterable[str], event_type: str) -> bool:
    return not patterns_matching(event_type).isdisjoint(filters)
