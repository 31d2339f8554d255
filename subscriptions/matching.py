"""Event type names and the filters that subscriptions use to pick them.

A filter is an exact name (`order.created`), a prefix wildcard (`order.*`, matching every name
below `order.` at any depth) or `*` (everything).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

EVENT_TYPE_MAX_LENGTH = 255
# Matched whole (`fullmatch`, and anchored with `\Z` for any `search`): `$` would also match
# before a final newline, letting "order.created\n" through as a name. Names are
# case-sensitive: "Order.Created" is another type than "order.created".
EVENT_TYPE_RE = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\Z")
FILTER_RE = re.compile(r"^(\*|[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*(\.\*)?)\Z")


def is_valid_event_type(name: str) -> bool:
    """Whether `name` is an event type name, exactly as given (no surrounding space)."""
    return (
        isinstance(name, str)
        and len(name) <= EVENT_TYPE_MAX_LENGTH
        and EVENT_TYPE_RE.fullmatch(name) is not None
    )


def is_valid_filter(pattern: str) -> bool:
    """Whether `pattern` is an exact name, 'prefix.*' or '*', exactly as given."""
    return (
        isinstance(pattern, str)
        and len(pattern) <= EVENT_TYPE_MAX_LENGTH
        and FILTER_RE.fullmatch(pattern) is not None
    )


def is_wildcard(pattern: str) -> bool:
    return pattern == "*" or pattern.endswith(".*")


def patterns_matching(event_type: str) -> frozenset[str]:
    """Every filter that selects `event_type`: `a.b.c` gives `*`, `a.*`, `a.b.*`, `a.b.c`."""
    parts = event_type.split(".")
    prefixes = {".".join(parts[:i]) + ".*" for i in range(1, len(parts))}
    return frozenset({"*", event_type, *prefixes})


def filters_match(filters: Iterable[str], event_type: str) -> bool:
    return not patterns_matching(event_type).isdisjoint(filters)
