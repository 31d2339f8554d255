"""A subscriber's preview of another version of an event type: the body it would receive,
rendered from its own last real event of that type when one can be (docs/contracts.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from subscriptions.contracts import ContractError, contracts
from subscriptions.models import Subscription

from ..models import Delivery, Event
from ..payloads import build_body


class PreviewUnavailable(ValueError):
    """The type is not declared in code, or has no such version; `field` names the input."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass
class Preview:
    """`body`: the JSON body (parsed) in the subscription's payload format; `source`: "event"
    when rendered from `event` (the subscription's last event of the type), "example" when from
    the catalog's example (no such event yet, or it predates the version: nothing renders a
    version up)."""

    name: str
    version: int
    body: dict[str, Any]
    source: str
    event: Event | None


def version_preview(subscription: Subscription, name: str, version: int) -> Preview:
    """The body `subscription` would receive for `name` in `version`.

    Raises PreviewUnavailable for an undeclared type or version, and ContractError if the
    host's down-converter fails on the event.
    """
    if not contracts.is_declared(name):
        raise PreviewUnavailable(f"{name!r} is not declared in code.", "type")
    if contracts.get(name, version) is None:
        raise PreviewUnavailable(f"{name!r} has no version {version}.", "version")
    last = (
        Delivery.objects.filter(subscription=subscription, event__type=name)
        .select_related("event")
        .order_by("-created_at", "-pk")
        .first()
    )
    event = last.event if last is not None else None
    data = _rendered(event, name, version) if event is not None else None
    if event is None or data is None:
        sample = Event(type=name, data=contracts.example(name, version), version=version)
        source, shown = "example", None
    else:
        sample = Event(id=event.id, type=name, data=data, version=version)
        sample.created_at = event.created_at
        source, shown = "event", event
    body = json.loads(build_body(sample, subscription.payload_format, version))
    return Preview(name, version, body, source, shown)


def _rendered(event: Event, name: str, version: int) -> dict[str, Any] | None:
    if event.version is None or version > event.version:
        return None
    if version == event.version:
        return event.data
    stored = (event.renditions or {}).get(str(version))
    if isinstance(stored, dict):
        return stored
    try:
        return contracts.render(name, event.data, event.version, version)
    except ContractError:
        return None
