"""Searching the delivery log: one set of criteria for the API (`GET /api/deliveries/`,
`POST /api/deliveries/retry/`), the admin's delivery list and the portal's log.

The criteria are a value (`DeliverySearch`), validated by the callers' forms or serializers, and
turned here into one `Q` over `Delivery`. Each criterion is a lookup an index answers on its own
or together with the newest-first order the lists page by (migration
`0014_delivery_search_and_bulk_retry`, bench/logsearch.py): the tenant through the row's copy
of it, `(tenant_key, -created_at)` and `(tenant_key, status, -created_at)`; the endpoint
through `(subscription, -created_at)` and `(subscription, status, created_at)`; status alone
through `(status, -created_at)`; the time range through `-created_at`; the event type and the
JSON filter through the event, by its primary key per candidate row (or from the event type
index when the type is rare).

The event type takes the forms endpoints subscribe with (`subscriptions.matching`): an exact
name, `prefix.*` (every name below `prefix.`, at any depth) or `*` (every type).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q, QuerySet
from rest_framework.exceptions import ValidationError as DRFValidationError

from subscriptions.filterlang import filter_q, validate_filter
from subscriptions.matching import is_valid_filter

from ..models import Delivery, DeliveryStatus

STATUS_VALUES: tuple[str, ...] = tuple(DeliveryStatus.values)


def event_type_q(pattern: str, *, prefix: str = "event__") -> Q:
    """Rows whose event type matches `pattern` as a subscription's filter would: `*` every
    type, `a.b.*` every type below `a.b.` (a prefix match the type index answers), else the
    exact name. `prefix` is the path from the queried model to the event ("" on Event).

    Raises ValueError for a pattern that is none of these (callers validate first)."""
    if not is_valid_filter(pattern):
        raise ValueError(f"not an event type pattern: {pattern!r}")
    if pattern == "*":
        return Q()
    if pattern.endswith(".*"):
        return Q(**{f"{prefix}type__startswith": pattern[:-1]})
    return Q(**{f"{prefix}type": pattern})


@dataclass(frozen=True)
class DeliverySearch:
    """What a search of the delivery log asks for; every criterion optional (None or empty:
    not restricted). Combined with AND.

    - `statuses`: any of these `DeliveryStatus` values.
    - `response_status`: the last HTTP status the endpoint answered (100 to 599).
    - `since` / `until`: created at or after / before, aware datetimes.
    - `event_type`: an exact name, `prefix.*` or `*`.
    - `tenant`: the tenant key of the endpoints (cross-tenant users only; a tenant user's
      search is scoped to its tenant by the caller whatever this says).
    - `subscription`, `event`: ids.
    - `filter`: a validated JSON filter over the event (`subscriptions.filterlang`).
    """

    statuses: tuple[str, ...] = ()
    response_status: int | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    event_type: str | None = None
    tenant: str | None = None
    subscription: uuid.UUID | None = None
    event: uuid.UUID | None = None
    filter: dict[str, Any] | None = field(default=None)

    def q(self) -> Q:
        """The criteria as one `Q` over `Delivery`."""
        condition = Q()
        if self.statuses:
            statuses = list(dict.fromkeys(self.statuses))
            condition &= Q(status=statuses[0]) if len(statuses) == 1 else Q(status__in=statuses)
        if self.response_status is not None:
            condition &= Q(last_status_code=self.response_status)
        if self.since is not None:
            condition &= Q(created_at__gte=self.since)
        if self.until is not None:
            condition &= Q(created_at__lt=self.until)
        if self.event_type:
            condition &= event_type_q(self.event_type)
        if self.tenant:
            # The row's copy of its subscription's tenant (`DeliveryQuerySet.for_tenant`).
            condition &= Q(tenant_key=self.tenant)
        if self.subscription is not None:
            condition &= Q(subscription_id=self.subscription)
        if self.event is not None:
            condition &= Q(event_id=self.event)
        if self.filter:
            condition &= filter_condition(self.filter)
        return condition

    def apply(self, queryset: QuerySet[Delivery]) -> QuerySet[Delivery]:
        """`queryset` narrowed to the matches (its scope and order kept)."""
        return queryset.filter(self.q())

    @property
    def is_empty(self) -> bool:
        """No criterion at all: the search is the whole (scoped) log."""
        return self == DeliverySearch()

    def describe(self) -> dict[str, Any]:
        """The criteria as JSON-safe values, only those given (for the bulk-retry record and
        logs): datetimes in ISO 8601, ids as strings."""
        described: dict[str, Any] = {}
        if self.statuses:
            described["status"] = list(self.statuses)
        for name in ("response_status", "event_type", "tenant", "filter"):
            value = getattr(self, name)
            if value not in (None, ""):
                described[name] = value
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None:
                described[name] = value.isoformat()
        for name in ("subscription", "event"):
            value = getattr(self, name)
            if value is not None:
                described[name] = str(value)
        return described


class InvalidFilter(ValueError):
    """A JSON filter that the filter language refuses; `messages` say why (field errors)."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


def validated_filter(value: Any) -> dict[str, Any]:
    """`value` checked by the filter language (`subscriptions.filterlang.validate_filter`).

    Raises InvalidFilter with its messages."""
    try:
        return validate_filter(value)
    except (DjangoValidationError, DRFValidationError) as exc:
        raise InvalidFilter(error_messages(exc)) from exc


def error_messages(exc: DjangoValidationError | DRFValidationError) -> list[str]:
    """Every message of a Django or DRF validation error, flattened, with its path."""
    detail: Any = (
        exc.detail
        if isinstance(exc, DRFValidationError)
        else (exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    )
    found: list[str] = []

    def walk(item: Any, path: str) -> None:
        if isinstance(item, dict):
            for key, inner in item.items():
                walk(inner, f"{path}.{key}" if path else str(key))
        elif isinstance(item, list | tuple):
            for inner in item:
                walk(inner, path)
        else:
            found.append(f"{path}: {item}" if path and path != "non_field_errors" else str(item))

    walk(detail, "")
    return found or [str(exc)]


def filter_condition(value: dict[str, Any]) -> Q:
    """A validated JSON filter over the event as a `Q` over `Delivery`."""
    return filter_q(value, prefix="event__")


def statuses_of(values: Sequence[str]) -> tuple[str, ...]:
    """Statuses given once each, in the order given."""
    return tuple(dict.fromkeys(values))


__all__ = [
    "STATUS_VALUES",
    "DeliverySearch",
    "InvalidFilter",
    "event_type_q",
    "filter_condition",
    "statuses_of",
    "validated_filter",
]
