"""What the deliveries admin pages share: read-only history, status badges, pretty JSON."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from ..models import DeliveryStatus

# The subscription admin's replay form (deliveries/admin/subscription_extension.py).
REPLAY_URL_NAME = "webhook_subscriptions_subscription_replay"

STATUS_COLOURS = {
    DeliveryStatus.SUCCEEDED: "#2e7d32",
    DeliveryStatus.FAILED: "#c62828",
    DeliveryStatus.DISCARDED: "#6d4c41",
    DeliveryStatus.RETRYING: "#ef6c00",
    DeliveryStatus.SENDING: "#1565c0",
    DeliveryStatus.PENDING: "#555",
    DeliveryStatus.SKIPPED: "#999",
}


def pretty_json(value: Any) -> str:
    return format_html(
        '<pre style="white-space:pre-wrap;margin:0">{}</pre>',
        json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False),
    )


def at_seconds(value: dt.datetime | None) -> str:
    """A time to the second in the current time zone, e.g. `2026-11-29 12:36:20 UTC`, in a
    `<time>` element carrying the exact ISO value; "-" for None. Attempts seconds apart must
    not look identical, as they do in the admin's default minute-precision format."""
    if value is None:
        return "-"
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    return format_html(
        '<time datetime="{}" style="white-space:nowrap">{}</time>',
        value.isoformat(),
        local.strftime("%Y-%m-%d %H:%M:%S %Z"),
    )


def seconds_display(field: str, description: Any) -> Callable[[Any, Any], str]:
    """A read-only admin column or field showing the datetime `field` with `at_seconds`."""

    @admin.display(description=description, ordering=field)
    def show(model_admin: Any, obj: Any) -> str:
        return at_seconds(getattr(obj, field))

    return show


def status_badge(status: str) -> str:
    return format_html(
        '<b style="color:{}">{}</b>',
        STATUS_COLOURS.get(DeliveryStatus(status), "#333"),
        DeliveryStatus(status).label,
    )


class ReadOnlyAdminMixin:
    """History is evidence: nobody edits it by hand."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def replay_url(model_admin: admin.ModelAdmin) -> str:
    return reverse(f"{model_admin.admin_site.name}:{REPLAY_URL_NAME}")


def prefilled_replay_url(
    model_admin: admin.ModelAdmin,
    subscription_id: object,
    since: dt.datetime,
    statuses: Sequence[str],
) -> str:
    """The replay form for one subscription, filled in with `since` (as the form shows times:
    local, to the second) and `statuses`."""
    query = urlencode(
        {
            "ids": str(subscription_id),
            "since": timezone.localtime(since).strftime("%Y-%m-%d %H:%M:%S"),
            "status": list(statuses),
        },
        doseq=True,
    )
    return f"{replay_url(model_admin)}?{query}"
