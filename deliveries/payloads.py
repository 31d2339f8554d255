"""The bytes a subscriber receives, in the subscription's payload format.

The body depends only on the event and the format, never on the attempt, so every retry sends
exactly the same bytes and only the `webhook-timestamp` header (and so the signature) changes.
"""

from __future__ import annotations

import json
from typing import Any

from subscriptions.models import PayloadFormat
from webhooks_core.wire import to_wire

from .conf import webhook_settings
from .models import Event

CONTENT_TYPES = {
    PayloadFormat.STANDARD: "application/json",
    PayloadFormat.CLOUDEVENTS: "application/cloudevents+json",
}


# ISO 8601 in UTC with a `Z`, e.g. `2026-01-15T14:30:00.250000Z`, whatever the host's settings
# (Standard Webhooks' timestamp; CloudEvents' `time` is RFC 3339): the API's own format.
isoformat = to_wire


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def versioned_data(event: Event, version: int | None = None) -> tuple[int | None, Any]:
    """(version, data) that a delivery of `event` pinned to `version` sends.

    Unversioned events (types not declared in code) send their data and no version. A
    versioned event sends its own version's data, or an older version rendered at publish time
    (`Event.renditions`); a version it has no rendition of (None, or declared after the event
    was published) gets the event's own version, and says so.
    """
    if event.version is None:
        return None, event.data
    if version is not None and version != event.version:
        rendition = (event.renditions or {}).get(str(version))
        if isinstance(rendition, dict):
            return version, rendition
    return event.version, event.data


def build_body(event: Event, payload_format: str, version: int | None = None) -> bytes:
    """The body sent for `event` in `payload_format`, in `version` (see `versioned_data`).

    The version is said where a spec names a place for it: CloudEvents' `dataschema` (a URI
    naming the data's schema, which "SHOULD" change with incompatible changes; setting
    `CLOUDEVENTS_DATASCHEMA`). Standard Webhooks names none but allows "additional metadata
    ... as top-level properties", so its body gets a top-level `version`. Both are inside the
    signed body. Unversioned events keep the bodies they always had.
    """
    version, data = versioned_data(event, version)
    if payload_format == PayloadFormat.CLOUDEVENTS:
        body = {
            "specversion": "1.0",
            "id": str(event.id),
            "source": webhook_settings.CLOUDEVENTS_SOURCE,
            "type": event.type,
            "time": isoformat(event.created_at),
            "datacontenttype": "application/json",
        }
        if version is not None:
            body["dataschema"] = str(webhook_settings.CLOUDEVENTS_DATASCHEMA).format(
                type=event.type, version=version
            )
        body["data"] = data
        return dumps(body)
    if version is None:
        return dumps({"type": event.type, "timestamp": isoformat(event.created_at), "data": data})
    return dumps(
        {
            "type": event.type,
            "version": version,
            "timestamp": isoformat(event.created_at),
            "data": data,
        }
    )


def content_type(payload_format: str) -> str:
    return CONTENT_TYPES.get(PayloadFormat(payload_format), "application/json")
