from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from subscriptions.admin import SubscriptionAdmin
from subscriptions.models import Subscription

from .models import Delivery, DeliveryAttempt, DeliveryStatus, Event
from .services.probes import send_test_event

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


class DeliveryInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Delivery
    fields = ["link", "subscription", "badge", "attempts", "last_status_code", "next_attempt_at"]
    readonly_fields = fields
    extra = 0
    show_change_link = False

    @admin.display(description=_("delivery"))
    def link(self, obj: Delivery) -> str:
        return format_html('<a href="../../delivery/{}/change/">#{}</a>', obj.pk, obj.pk)

    @admin.display(description=_("status"))
    def badge(self, obj: Delivery) -> str:
        return status_badge(obj.status)


@admin.register(Event)
class EventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "type", "created_at", "fanned_out_at"]
    list_filter = ["type", "created_at"]
    search_fields = ["=id", "type", "idempotency_key"]
    date_hierarchy = "created_at"
    fields = [
        "id",
        "type",
        "payload",
        "idempotency_key",
        "target_subscription",
        "created_at",
        "fanned_out_at",
    ]
    readonly_fields = fields
    inlines = [DeliveryInline]

    @admin.display(description=_("data"))
    def payload(self, obj: Event) -> str:
        return pretty_json(obj.data)


class AttemptInline(ReadOnlyAdminMixin, admin.StackedInline):
    model = DeliveryAttempt
    extra = 0
    fields = [
        "number",
        "started_at",
        "duration_ms",
        "response_status",
        "error_kind",
        "error",
        "sent_headers",
        "received_headers",
        "response_body",
        "task_id",
    ]
    readonly_fields = fields

    @admin.display(description=_("request headers"))
    def sent_headers(self, obj: DeliveryAttempt) -> str:
        return pretty_json(obj.request_headers)

    @admin.display(description=_("response headers"))
    def received_headers(self, obj: DeliveryAttempt) -> str:
        return pretty_json(obj.response_headers)


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "event_type",
        "subscription",
        "badge",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "created_at",
    ]
    list_filter = ["status", "event__type", "created_at", "subscription"]
    search_fields = ["=event__id", "subscription__url", "last_error"]
    date_hierarchy = "created_at"
    list_select_related = ["event", "subscription"]
    fields = [
        "event",
        "subscription",
        "status",
        "attempts",
        "next_attempt_at",
        "claimed_at",
        "last_status_code",
        "last_error",
        "delivered_at",
        "created_at",
        "updated_at",
    ]
    readonly_fields = fields
    inlines = [AttemptInline]

    @admin.display(description=_("event type"), ordering="event__type")
    def event_type(self, obj: Delivery) -> str:
        return obj.event.type

    @admin.display(description=_("status"), ordering="status")
    def badge(self, obj: Delivery) -> str:
        return status_badge(obj.status)


@admin.action(description=_("Send a test event"), permissions=["change"])
def send_test_events(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Subscription]
) -> None:
    active = list(queryset.filter(is_active=True))
    for subscription in active:
        send_test_event(subscription)
    modeladmin.message_user(
        request,
        ngettext(
            "Sent a test event to %(count)d subscription.",
            "Sent a test event to %(count)d subscriptions.",
            len(active),
        )
        % {"count": len(active)},
        messages.SUCCESS,
    )
    skipped = queryset.count() - len(active)
    if skipped:
        modeladmin.message_user(
            request,
            ngettext(
                "%(count)d disabled subscription was skipped.",
                "%(count)d disabled subscriptions were skipped.",
                skipped,
            )
            % {"count": skipped},
            messages.WARNING,
        )


# The subscriptions app never imports the pipeline, so the pipeline adds its action to the
# subscription admin from here.
SubscriptionAdmin.actions = [*(SubscriptionAdmin.actions or ()), send_test_events]
