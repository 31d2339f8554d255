"""The event catalog: every type with its description, JSON Schema and an example payload."""

from __future__ import annotations

import json

from django.db.models import OuterRef, Subquery
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_http_methods

from deliveries.models import Event
from deliveries.payloads import build_body
from subscriptions.examples import example_from_schema
from subscriptions.models import EventType, PayloadFormat

from .. import scope
from .base import page, portal_view


def pretty(value: object) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


@portal_view
@require_http_methods(["GET", "HEAD"])
def catalog(request: HttpRequest, tenant: str) -> HttpResponse:
    latest = scope.events(tenant).filter(type=OuterRef("name")).order_by("-created_at")
    types = list(
        EventType.objects.order_by("name").annotate(latest_id=Subquery(latest.values("pk")[:1]))
    )
    events = Event.objects.in_bulk([t.latest_id for t in types if t.latest_id])
    entries = []
    for event_type in types:
        event = events.get(event_type.latest_id)
        if event is not None:
            data, source = event.data, "event"
        else:
            data, source = example_from_schema(event_type.schema or {}), "schema"
        sample = Event(type=event_type.name, data=data if isinstance(data, dict) else {})
        if event is not None:
            sample.id, sample.created_at = event.id, event.created_at
        body = json.loads(build_body(sample, PayloadFormat.STANDARD))
        entries.append(
            {
                "type": event_type,
                "schema": pretty(event_type.schema) if event_type.schema is not None else "",
                "example": pretty(body),
                "source": source,
                "event": event,
            }
        )
    return page(request, "webhooks_portal/catalog.html", {"entries": entries, "nav": "catalog"})
