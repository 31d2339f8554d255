"""The bytes a subscriber receives, in the subscription's payload format.

The body depends only on the event and the format, never on the attempt, so every retry sends
exactly the same bytes and only the `webhook-timestamp` header (and so the signature) changes.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.utils import timezone

from subscriptions.models import PayloadFormat

from .conf import webhook_settings
from .models import Event

CONTENT_TYPES = {
    PayloadFormat.STANDARD: "application/json",
    PayloadFormat.CLOUDEVENTS: "application/cloudevents+json",
}


def isoformat(value: dt.datetime) -> str:
    """`value` as ISO 8601 in UTC with a `Z`, e.g. `2026-01-15T14:30:00.250000Z`.

    The wire format does not depend on the host's settings (Standard Webhooks' timestamp,
    CloudEvents' `time` is RFC 3339): a naive value, as stored by a host with `USE_TZ = False`,
    is local time in `TIME_ZONE`; an aware one is converted from its own zone.
    """
    if timezone.is_naive(value):
        value = timezone.make_aware(value, timezone.get_default_timezone())
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def build_body(event: Event, payload_format: str) -> bytes:
    if payload_format == PayloadFormat.CLOUDEVENTS:
        return dumps(
            {
                "specversion": "1.0",
                "id": str(event.id),
                "source": webhook_settings.CLOUDEVENTS_SOURCE,
                "type": event.type,
                "time": isoformat(event.created_at),
                "datacontenttype": "application/json",
                "data": event.data,
            }
        )
    return dumps({"type": event.type, "timestamp": isoformat(event.created_at), "data": event.data})


def content_type(payload_format: str) -> str:
    return CONTENT_TYPES.get(PayloadFormat(payload_format), "application/json")
