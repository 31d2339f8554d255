"""What the deliveries admin pages share: read-only history, status badges, pretty JSON."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest
from django.utils.html import format_html

from ..models import DeliveryStatus

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


def status_badge(status: str) -> str:
    return format_html(
        '<b style="color:{}">{}</b>',
        STATUS_COLOURS.get(status, "#333"),
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
