"""The simulator: which of a tenant's recent events a draft subscription would have received.

The same rules as the fan-out (`subscriptions.models.SubscriptionQuerySet.route`): event type
patterns, channels (a draft with channels takes events carrying one of them; without, every
event), and the filter (`subscriptions.filterlang`, evaluated here by the database with the
same semantics as `matches`). Only the tenant's own events are looked at (never another
tenant's, so never another tenant's broadcasts), and never test events, which go to one
endpoint whatever the filters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Q

from subscriptions.filterlang import filter_q
from subscriptions.matching import is_wildcard

from ..models import Event
from .connections import working_alias

# How many recent events one simulation looks at: at most, and when the request names none.
MAX_LIMIT = 100
DEFAULT_LIMIT = 20


@dataclass(frozen=True)
class Simulation:
    """`events`: the matching events among the tenant's last `examined`, newest first;
    `count`: how many they are."""

    examined: int
    events: list[Event]

    @property
    def count(self) -> int:
        return len(self.events)


def types_q(patterns: Sequence[str]) -> Q:
    """Events whose type one of `patterns` selects ("*", "prefix.*" or an exact name), as the
    fan-out selects them (`subscriptions.matching`)."""
    q = Q(pk__in=[])
    for pattern in patterns:
        if pattern == "*":
            return Q()
        if is_wildcard(pattern):
            q |= Q(type__startswith=pattern[:-1])  # "order.*" -> "order." and below
        else:
            q |= Q(type=pattern)
    return q


def simulate(
    tenant: str,
    *,
    event_types: Sequence[str],
    filter: dict[str, Any] | None = None,
    channels: Sequence[str] | None = None,
    limit: int = DEFAULT_LIMIT,
) -> Simulation:
    """The events among `tenant`'s last `limit` (1 to MAX_LIMIT) that a subscription with
    `event_types`, `filter` and `channels` would have received.

    Inputs are taken as validated (the API's serializer and the portal's form check them with
    `validate_filter` and `validate_channels`); raises ValueError for a `limit` out of range.
    Two queries at most: the window of recent events is chosen by the (tenant, created) index,
    and the rules are applied by the database inside it.
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit is 1 to {MAX_LIMIT}")
    events = Event.objects.using(working_alias())
    recent = events.filter(tenant_id=tenant, target_subscription__isnull=True).order_by(
        "-created_at", "-pk"
    )
    window = list(recent.values_list("pk", flat=True)[:limit])
    rules = types_q(event_types) & filter_q(filter)
    if channels:
        rules &= filter_q({"channels": {"$in": list(channels)}})
    found = list(
        events.filter(pk__in=window)
        .filter(rules)
        .order_by("-created_at", "-pk")
        .defer("renditions")
    )
    return Simulation(examined=len(window), events=found)
