"""The event log and the deliveries with their attempts: read-only history, plus the one
action that changes anything (send again), which calls a service."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from subscriptions.admin import tenant_filter
from subscriptions.matching import is_valid_filter
from webhooks_core.search import IndexedSearch, as_uuid
from webhooks_core.wrap import breakable

from .. import summaries
from ..models import Delivery, Event
from ..search import delivery_search, event_search
from ..services import pickup, replay
from ..services.logsearch import InvalidFilter, event_type_q, filter_condition, validated_filter
from ..services.sent import request_sent
from . import ordering
from .attempts import attempt_rows
from .bulk import retry_matching_view
from .common import (
    ReadOnlyAdminMixin,
    at_seconds,
    pretty_json,
    seconds_display,
    status_badge,
)
from .dashboard import dashboard_view
from .keyset import KeysetListAdmin, value_filter


def parse_uuid(value: str) -> object:
    found = as_uuid(value)
    if found is None:
        raise ValueError(value)
    return found


def parse_type_pattern(value: str) -> str:
    if not is_valid_filter(value):
        raise ValueError(value)
    return value


def event_type_filter(lookup: str) -> type[admin.SimpleListFilter]:
    """The event type as endpoints subscribe: exact, `prefix.*` or `*` (`logsearch`)."""
    # The parameter is the lookup itself, as the admin's own field filter named it (bookmarks).
    prefix = lookup[: -len("type")]
    return value_filter(
        lookup,
        _("event type"),
        lookup,
        parse=parse_type_pattern,
        condition=lambda pattern: event_type_q(pattern, prefix=prefix),
        help_text=_("e.g. order.created, order.* or *"),
    )


def parse_response_status(value: str) -> int:
    number = int(value)
    if not 100 <= number <= 599:
        raise ValueError(value)
    return number


def parse_event_filter(value: str) -> dict:
    try:
        return validated_filter(json.loads(value))
    except InvalidFilter as exc:
        raise ValueError("; ".join(exc.messages)) from exc


response_status_filter = value_filter(
    "last_status_code",
    _("response status"),
    "last_status_code",
    parse=parse_response_status,
    help_text=_("The last HTTP status answered, e.g. 503."),
)
event_filter = value_filter(
    "filter",
    _("event filter (JSON)"),
    "event",
    parse=parse_event_filter,
    condition=filter_condition,
    help_text=_('A JSON filter over the event, e.g. {"data.amount": {"$gt": 100}}.'),
)


@admin.display(description=_("subscription"), ordering="subscription")
def endpoint_display(obj: Delivery) -> str:
    """The delivery's endpoint, marked when it was deleted (its history stays)."""
    if obj.subscription_deleted:
        return format_html(
            '{} <span class="webhooks-endpoint-deleted" style="color:#c62828">({})</span>',
            breakable(obj.subscription),
            _("endpoint deleted"),
        )
    return format_html(
        '<a href="{}">{}</a>',
        reverse("admin:webhook_subscriptions_subscription_change", args=[obj.subscription_id]),
        breakable(obj.subscription),
    )


class DeliveryInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Delivery
    fields = readonly_fields = (
        "link",
        "endpoint",
        "badge",
        "attempts",
        "last_status_code",
        "next_attempt_at",
    )
    endpoint = staticmethod(endpoint_display)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Delivery]:
        return super().get_queryset(request).select_related("subscription")

    extra = 0
    show_change_link = False

    @admin.display(description=_("delivery"))
    def link(self, obj: Delivery) -> str:
        return format_html('<a href="../../delivery/{}/change/">#{}</a>', obj.pk, obj.pk)

    @admin.display(description=_("status"))
    def badge(self, obj: Delivery) -> str:
        return status_badge(obj.status, obj.waiting_for)


@admin.register(Event)
class EventAdmin(IndexedSearch, ReadOnlyAdminMixin, KeysetListAdmin):
    # Short columns (the fan-out as a yes/no icon, the type breaking after its dots) so the
    # list fits beside the navigation sidebar and the filters at 1,400 px.
    list_display = ["id", "tenant", "event_type", "broadcast", "created_at", "fanned_out"]
    # No filter lists values read from the log (a DISTINCT over every event): typed values.
    list_filter = [
        tenant_filter("tenant_id"),
        "broadcast",
        event_type_filter("type"),
        "created_at",
    ]
    # Searched by `event_search` (deliveries/search.py): exact ids, types and keys.
    search_lookup = staticmethod(event_search)
    search_fields = ["=id", "=type", "=idempotency_key"]
    search_help_text = _("An event id, an event type or an idempotency key.")
    change_list_template = "deliveries/admin/keyset_change_list.html"
    fields = readonly_fields = (
        "id",
        "tenant",
        "broadcast",
        "type",
        "channels",
        "payload",
        "idempotency_key",
        "target_subscription",
        "created_at",
        "fanned_out_at",
        "traceparent",  # the publish's trace, when OpenTelemetry traced it (docs/tracing.md)
    )
    inlines = [DeliveryInline]

    @admin.display(description=_("data"))
    def payload(self, obj: Event) -> str:
        return pretty_json(obj.data)

    @admin.display(description=_("event type"), ordering="type")
    def event_type(self, obj: Event) -> str:
        return breakable(obj.type)

    @admin.display(description=_("fanned out"), boolean=True, ordering="fanned_out_at")
    def fanned_out(self, obj: Event) -> bool:
        return obj.fanned_out_at is not None


@admin.register(Delivery)
class DeliveryAdmin(IndexedSearch, ReadOnlyAdminMixin, KeysetListAdmin):
    # Tenant and attempt count share the endpoint's and the status's cells: every column
    # fits beside the navigation sidebar and the filters at 1,400 px.
    list_display = [
        "id",
        "event_type",
        "endpoint_and_tenant",
        "status_and_attempts",
        "last_answer",
        "next_attempt",
        "created",
    ]
    # Endpoints grow with customers: the endpoint filter takes an id typed in (or the link
    # from an endpoint's page), never a list of every endpoint.
    list_filter = [
        tenant_filter("subscription__tenant_id"),
        "status",
        event_type_filter("event__type"),
        response_status_filter,
        "created_at",
        value_filter(
            # The parameter the endpoint pages' links (and bookmarks) have always used.
            "subscription__id__exact",
            _("endpoint id"),
            "subscription_id",
            parse=parse_uuid,
            help_text=_("The endpoint's id (UUID)."),
        ),
        event_filter,
    ]
    # Searched by `delivery_search` (deliveries/search.py): ids exactly, URLs by index.
    search_lookup = staticmethod(delivery_search)
    search_fields = ["=id", "=event__id", "subscription__url"]
    search_help_text = _("A delivery id, an event id, an endpoint id, or part of an endpoint URL.")
    list_select_related = ["event", "subscription"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    ("event", "endpoint"),
                    ("badge", "attempts", "last_status_code"),
                    "last_error",
                    "ordering_key",
                ]
            },
        ),
        (_("Times"), {"fields": [("created", "updated"), ("next_send", "delivered")]}),
        (_("Request"), {"fields": ["request_sent"]}),
    ]
    readonly_fields = [
        "event",
        "endpoint",
        "badge",
        "attempts",
        "last_status_code",
        "created",
        "next_send",
        "delivered",
        "updated",
        "last_error",
        "ordering_key",
        "request_sent",
    ]
    actions = ["send_again_now"]
    change_list_template = "deliveries/admin/delivery_change_list.html"
    # The attempts follow the fields as one compact table (attempts.html), not an inline: a
    # stacked inline took about 370 px per attempt.
    change_form_template = "deliveries/admin/delivery_change_form.html"

    endpoint = staticmethod(endpoint_display)
    created = seconds_display("created_at", _("created"))
    delivered = seconds_display("delivered_at", _("delivered"))
    updated = seconds_display("updated_at", _("updated"))

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        delivery = self.get_object(request, unquote(object_id))
        context = dict(extra_context or {})
        if delivery is not None:
            context["attempt_rows"] = attempt_rows(delivery)
            context["can_send_again"] = self.has_redeliver_permission(request)
            context["can_skip"] = context["can_send_again"] and ordering.can_skip(delivery)
        return super().change_view(request, object_id, form_url, context)

    next_attempt = seconds_display("next_attempt_at", _("next attempt"))

    @admin.display(description=_("endpoint"), ordering="subscription__description")
    def endpoint_and_tenant(self, obj: Delivery) -> str:
        return format_html(
            '{}<div class="webhooks-whose">{}</div>',
            endpoint_display(obj),
            _("tenant %(key)s") % {"key": obj.subscription.tenant_id},
        )

    @admin.display(description=_("status"), ordering="status")
    def status_and_attempts(self, obj: Delivery) -> str:
        return format_html(
            '{}<div class="webhooks-whose">{}</div>',
            status_badge(obj.status, obj.waiting_for),
            ngettext("%(n)d attempt", "%(n)d attempts", obj.attempts) % {"n": obj.attempts},
        )

    @admin.display(description=_("next attempt"), ordering="next_attempt_at")
    def next_send(self, obj: Delivery) -> str:
        """The nominal time, and for a delivery parked for the sweep the window in which the
        sweep really sends it (deliveries.services.pickup)."""
        pick = pickup.next_send(obj)
        if pick is None or not pick.by_sweep:
            return at_seconds(obj.next_attempt_at)
        return format_html(
            '{}<div id="sweep-pickup">{}</div>',
            at_seconds(obj.next_attempt_at),
            _("Parked for the sweep: sent between %(earliest)s and %(latest)s.")
            % {
                "earliest": timezone.localtime(pick.earliest).strftime("%H:%M:%S"),
                "latest": timezone.localtime(pick.latest).strftime("%H:%M:%S"),
            },
        )

    def send_again_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """POST from the "Send again now" button of a delivery's page: one more attempt now
        through the redelivery service, then back to the page with what happened."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_redeliver_permission(request):
            raise PermissionDenied
        delivery = self.get_object(request, unquote(object_id))
        if delivery is None:
            raise Http404
        try:
            number = replay.redeliver_one(delivery)
        except replay.ReplayError as exc:
            self.message_user(request, exc.message, messages.WARNING)
        else:
            self.message_user(
                request,
                _(
                    "Attempt %(n)d queued: sent again now, with the same webhook-id. Reload "
                    "this page to see its outcome."
                )
                % {"n": number},
                messages.SUCCESS,
            )
        return HttpResponseRedirect(
            reverse(f"{self.admin_site.name}:deliveries_delivery_change", args=[delivery.pk])
        )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Delivery]:
        queryset = super().get_queryset(request).select_related("event", "subscription")
        return summaries.with_last_error_kind(queryset)

    @admin.display(description=_("last answer"), ordering="last_status_code")
    def last_answer(self, obj: Delivery) -> str | None:
        """One line by error kind (deliveries.summaries); the raw error is on the page."""
        return summaries.last_answer(obj) or None  # None: the admin's empty value

    @admin.display(description=_("tenant"), ordering="subscription__tenant_id")
    def tenant(self, obj: Delivery) -> str | None:
        return obj.subscription.tenant_id

    @admin.display(description=_("as sent (last attempt)"))
    def request_sent(self, obj: Delivery) -> str:
        """The last request as sent: stored (redacted) headers and the rebuilt body
        (`deliveries.services.sent`, as the portal shows it)."""
        sent = request_sent(obj)
        return format_html(
            '<pre id="request-sent" style="white-space:pre-wrap;margin:0">{} {}\n{}\n\n{}</pre>',
            sent.method,
            sent.url,
            format_html_join("\n", "{}: {}", sent.headers.items()),
            sent.body.decode("utf-8"),
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
            ),
            path(
                "retry-matching/",
                self.admin_site.admin_view(lambda request: retry_matching_view(self, request)),
                name="deliveries_delivery_retry_matching",
            ),
            path(
                "<path:object_id>/send-again/",
                self.admin_site.admin_view(self.send_again_view),
                name="deliveries_delivery_send_again",
            ),
            path(
                "<path:object_id>/skip/",
                self.admin_site.admin_view(
                    lambda request, object_id: ordering.skip_view(self, request, unquote(object_id))
                ),
                name="deliveries_delivery_skip",
            ),
        ]
        return urls + super().get_urls()

    @admin.display(description=_("event type"), ordering="event__type")
    def event_type(self, obj: Delivery) -> str:
        # A line may break after each dot (<wbr>): long dotted names never widen the list.
        return breakable(obj.event.type)

    @admin.display(description=_("status"), ordering="status")
    def badge(self, obj: Delivery) -> str:
        return status_badge(obj.status, obj.waiting_for)
