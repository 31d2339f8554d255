"""Search terms for the event log and the delivery list, as lookups an index answers.

Support's first question is "did you send event X?": an event id must be found at once, not by
`UPPER(event_id::text) LIKE ...` over every delivery. So a UUID is matched exactly (the event's
primary key, or the delivery's event or endpoint through their indexes), a number is a delivery
id, and only other text is a substring of an endpoint's URL (trigram-indexed on PostgreSQL,
`webhooks_core.search`). Free text inside error messages is not searched here: the API's and
the portal's filters narrow by status and answer instead.
"""

from __future__ import annotations

from django.db.models import Q

from subscriptions.models import Subscription
from webhooks_core.search import as_int, as_uuid


def delivery_search(term: str) -> Q:
    """Deliveries matching `term`: a delivery id (`123` or `#123`), an event or endpoint id
    (UUID), or a piece of the endpoint's URL."""
    term = term.strip()
    number = as_int(term)
    if number is not None:
        return Q(pk=number)
    found = as_uuid(term)
    if found is not None:
        return Q(event_id=found) | Q(subscription_id=found)
    endpoints = Subscription.objects.filter(url__icontains=term).values("pk")
    return Q(subscription_id__in=endpoints)


def event_search(term: str) -> Q:
    """Events matching `term`: an event id (UUID), a type name or an idempotency key, exactly."""
    term = term.strip()
    found = as_uuid(term)
    if found is not None:
        return Q(pk=found)
    return Q(type=term) | Q(idempotency_key=term)
