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
        EventType.objects.order_by("name")
        .annotate(latest_id=Subquery(latest.values("pk")[:1]))
        .prefetch_related("versions")
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
                "versions": _versions(event_type),
            }
        )
    return page(request, "webhooks_portal/catalog.html", {"entries": entries, "nav": "catalog"})


def _versions(event_type: EventType) -> list[dict[str, object]]:
    """A declared type's versions, newest first, each with its schema and its example as a
    whole body (the `version` field included); [] for a hand-typed type."""
    rows = sorted(event_type.versions.all(), key=lambda row: -row.version)
    shown = []
    for index, row in enumerate(rows):
        sample = Event(type=event_type.name, data=row.example or {}, version=row.version)
        body = json.loads(build_body(sample, PayloadFormat.STANDARD, row.version))
        shown.append(
            {
                "version": row.version,
                "latest": index == 0,
                "deprecated": row.deprecated,
                "description": row.description,
                "schema": pretty(row.schema),
                "example": pretty(body),
            }
        )
    return shown
