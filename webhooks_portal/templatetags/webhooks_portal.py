"""Filters of the portal's templates: `{% load webhooks_portal %}`."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django import template
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.translation import gettext as _

from deliveries.services import pickup
from deliveries.services.health import Health
from deliveries.services.pickup import PickUp
from deliveries.summaries import last_answer
from webhooks_core import wrap

register = template.Library()


@register.filter
def percent(value: float | None) -> str:
    """0.9962 -> '99.6%'; never rounds a failure away to '100%'."""
    if value is None:
        return "—"
    shown = f"{value * 100:.1f}"
    if shown == "100.0" and value < 1:
        shown = "99.9"
    return f"{shown}%"


@register.filter
def p95(health: Health) -> str:
    """The 24 h p95 latency as the bound of its bucket: '≤ 250 ms', '≤ 2.5 s', '> 30 s'."""
    if health.p95_ms is None:
        return "—"
    bound = health.p95_ms
    text = f"{bound} ms" if bound < 1000 else f"{bound / 1000:g} s"
    return f"> {text}" if health.p95_over else f"≤ {text}"


@register.filter
def when(value: dt.datetime | None) -> str:
    """A time to the second in the current time zone: '2026-01-31 12:00:05 UTC'."""
    if value is None:
        return "—"
    return date_format(timezone.localtime(value), "Y-m-d H:i:s T")


@register.filter
def clock(value: dt.datetime | None) -> str:
    """Time of day to the second: '12:00:05'."""
    if value is None:
        return "—"
    return date_format(timezone.localtime(value), "H:i:s")


@register.filter
def breakable(value: Any) -> str:
    """A name or URL that wraps only after '.', '/', '-' or '_' (`webhooks_core.wrap`)."""
    return wrap.breakable(value)


@register.filter
def next_send(delivery: Any) -> PickUp | None:
    """When a waiting delivery is really sent next (`deliveries.services.pickup`): its nominal
    time, and the sweep's window when it is parked for the sweep."""
    return pickup.next_send(delivery)


@register.filter
def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


@register.filter
def pretty_body(value: bytes | str) -> str:
    """A JSON body indented for reading; anything else as it is."""
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


@register.filter
def as_text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


@register.filter
def milliseconds(value: int | None) -> str:
    if value is None:
        return "—"
    return f"{value} ms" if value < 10_000 else f"{value / 1000:.1f} s"


register.filter("last_answer", last_answer)


@register.filter
def outcome(attempt: Any) -> str:
    """An attempt's result in a few words: 'HTTP 200', 'HTTP 500', 'Timed out'."""
    if attempt.response_status is not None:
        return f"HTTP {attempt.response_status}"
    return attempt.get_error_kind_display() or _("No answer")


# Longest excerpt of an event's data in the endpoint form's preview panel, in characters.
EXCERPT_LENGTH = 160


@register.filter
def json_excerpt(value: Any) -> str:
    """Compact JSON of `value`, cut to EXCERPT_LENGTH characters with an ellipsis."""
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return text if len(text) <= EXCERPT_LENGTH else text[: EXCERPT_LENGTH - 1] + "…"


@register.filter
def field_label(form: Any, name: str) -> str:
    """The label of `form`'s field `name` (the name itself if it has none)."""
    field = form.fields.get(name)
    return str(field.label) if field is not None and field.label else name
