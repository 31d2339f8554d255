"""The event log and the deliveries with their attempts: read-only history, plus the one
action that changes anything (send again), which calls a service."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import URLPattern, path
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from ..models import Delivery, DeliveryAttempt, Event
from ..payloads import build_body
from ..services import replay
from .common import ReadOnlyAdminMixin, pretty_json, status_badge
from .dashboard import dashboard_view


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
        "request_sent",
    ]
    readonly_fields = fields
    inlines = [AttemptInline]
    actions = ["send_again_now"]
    change_list_template = "deliveries/admin/delivery_change_list.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Delivery]:
        return super().get_queryset(request).select_related("event", "subscription")

    @admin.display(description=_("request sent"))
    def request_sent(self, obj: Delivery) -> str:
        """The last request as sent: stored (redacted) headers and the rebuilt body.

        The body is rebuilt rather than stored because it only depends on the event and the
        payload format (deliveries/payloads.py), so every attempt sent these exact bytes.
        """
        last = obj.attempt_set.order_by("-number").first()
        headers = last.request_headers if last else {}
        body = build_body(obj.event, obj.subscription.payload_format).decode("utf-8")
        return format_html(
            '<pre id="request-sent" style="white-space:pre-wrap;margin:0">POST {}\n{}\n\n{}</pre>',
            obj.subscription.url,
            format_html_join("\n", "{}: {}", sorted(headers.items())),
            body,
        )

    def has_redeliver_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("deliveries.change_delivery")

    @admin.action(description=_("Send again now"), permissions=["redeliver"])
    def send_again_now(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        selected = list(queryset.values_list("pk", flat=True))
        sent = replay.redeliver(selected)
        self.message_user(
            request,
            ngettext(
                "%(sent)d of %(total)d delivery queued for another attempt.",
                "%(sent)d of %(total)d deliveries queued for another attempt.",
                len(selected),
            )
            % {"sent": sent, "total": len(selected)},
            messages.SUCCESS if sent else messages.WARNING,
        )
        if sent < len(selected):
            self.message_user(
                request,
                _("Deliveries being sent right now or of disabled subscriptions were left alone."),
                messages.INFO,
            )

    def get_urls(self) -> list[URLPattern]:
        # The dashboard is an admin page of its own, linked from the delivery list.
        urls = [
            path(
                "dashboard/",
                self.admin_site.admin_view(lambda request: dashboard_view(self, request)),
                name="deliveries_dashboard",
            )
        ]
        return urls + super().get_urls()

    @admin.display(description=_("event type"), ordering="event__type")
    def event_type(self, obj: Delivery) -> str:
        return obj.event.type

    @admin.display(description=_("status"), ordering="status")
    def badge(self, obj: Delivery) -> str:
        return status_badge(obj.status)
