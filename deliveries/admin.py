from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.timesince import timesince
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from subscriptions.admin import SubscriptionAdmin as BaseSubscriptionAdmin
from subscriptions.admin import tenant_filter
from subscriptions.models import Subscription

from . import charts
from .forms import ReplayForm
from .models import Delivery, DeliveryAttempt, DeliveryStatus, Event
from .payloads import build_body
from .services import health, replay
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
    list_display = ["id", "tenant", "type", "broadcast", "created_at", "fanned_out_at"]
    list_filter = [tenant_filter("tenant_id"), "broadcast", "type", "created_at"]
    search_fields = ["=id", "type", "idempotency_key"]
    date_hierarchy = "created_at"
    fields = [
        "id",
        "tenant",
        "broadcast",
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
        "tenant",
        "subscription",
        "badge",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "created_at",
    ]
    list_filter = [
        tenant_filter("subscription__tenant_id"),
        "status",
        "event__type",
        "created_at",
        "subscription",
    ]
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

    def get_queryset(self, request: HttpRequest) -> QuerySet[Delivery]:
        return super().get_queryset(request).select_related("event", "subscription")

    @admin.display(description=_("tenant"), ordering="subscription__tenant_id")
    def tenant(self, obj: Delivery) -> str:
        return obj.subscription.tenant_id

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

    def get_urls(self) -> list:
        urls = [
            path(
                "dashboard/",
                self.admin_site.admin_view(self.dashboard_view),
                name="deliveries_dashboard",
            )
        ]
        return urls + super().get_urls()

    def dashboard_view(self, request: HttpRequest) -> HttpResponse:
        board = health.dashboard()
        context = {
            **self.admin_site.each_context(request),
            "title": _("Webhooks dashboard"),
            "board": board,
            "chart": charts.minute_chart(board.minutes),
            "opts": self.model._meta,
            "subscription_opts": Subscription._meta,
        }
        return render(request, "deliveries/admin/dashboard.html", context)

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


# --- Subscriptions as seen by the pipeline: health columns, replay, the re-enable offer --------
# The registry's admin (subscriptions/admin.py) knows nothing of deliveries; this subclass adds
# what needs them and replaces its registration. Mixins keep each concern separable.


class SubscriptionHealthMixin:
    """Health columns computed for the whole page in a few grouped queries (not per row)."""

    health_columns = ["success_rate", "p95_latency", "failures_in_a_row", "last_success", "days"]

    def get_list_display(self, request: HttpRequest) -> list:
        return [*super().get_list_display(request), *self.health_columns]

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        cl = getattr(response, "context_data", {}).get("cl")
        if cl is not None:
            # Evaluating the page's queryset caches its objects, and the template then renders
            # these same objects, carrying their health figures.
            page = list(cl.result_list)
            figures = health.subscription_health(page)
            for obj in page:
                obj.webhooks_health = figures.get(obj.pk)
        return response

    @staticmethod
    def _health(obj: Subscription) -> health.Health | None:
        return getattr(obj, "webhooks_health", None)

    @admin.display(description=_("success 24 h"))
    def success_rate(self, obj: Subscription) -> str:
        figures = self._health(obj)
        if figures is None:
            return "-"
        return charts.success_rate_html(figures.succeeded_24h, figures.attempts_24h)

    @admin.display(description=_("p95 24 h"))
    def p95_latency(self, obj: Subscription) -> str:
        figures = self._health(obj)
        return charts.p95_text(figures.p95_ms, figures.p95_over) if figures else "-"

    @admin.display(description=_("failures in a row"))
    def failures_in_a_row(self, obj: Subscription) -> str:
        figures = self._health(obj)
        count = figures.failures_in_a_row if figures else 0
        if not count:
            return "0"
        return format_html('<b style="color:#c62828">{}</b>', count)

    @admin.display(description=_("last success"), ordering="last_success_at")
    def last_success(self, obj: Subscription) -> str:
        if not obj.last_success_at:
            return "-"
        return format_html(
            '<span title="{}">{}</span>',
            obj.last_success_at.isoformat(),
            _("%(ago)s ago") % {"ago": timesince_short(obj.last_success_at)},
        )

    @admin.display(description=_("last 7 days"))
    def days(self, obj: Subscription) -> str:
        figures = self._health(obj)
        return charts.day_bars(figures.days) if figures else "-"


def timesince_short(value: Any) -> str:
    return timesince(value, timezone.now(), depth=1)


class SubscriptionReplayMixin:
    """Replay from the admin: an action and a link lead to an intermediate form (since/until/
    statuses); the work runs in a Celery task, the page answers how many were queued."""

    def replay_url(self) -> str:
        return reverse(f"{self.admin_site.name}:webhook_subscriptions_subscription_replay")

    def get_urls(self) -> list:
        urls = [
            path(
                "replay/",
                self.admin_site.admin_view(self.replay_view),
                name="webhook_subscriptions_subscription_replay",
            )
        ]
        return urls + super().get_urls()

    def after_enable(
        self,
        request: HttpRequest,
        subscription: Subscription,
        *,
        disabled_at: Any,
        failing_since: Any,
    ) -> None:
        super().after_enable(
            request, subscription, disabled_at=disabled_at, failing_since=failing_since
        )
        missed = replay.missed_during_outage(subscription, disabled_at, failing_since)
        if missed is None:
            return
        query = urlencode(
            {
                "ids": str(subscription.pk),
                "since": timezone.localtime(missed.since).strftime("%Y-%m-%d %H:%M:%S"),
                "status": list(replay.OUTAGE_STATUSES),
            },
            doseq=True,
        )
        self.message_user(
            request,
            format_html(
                '{} <a class="replay-offer" href="{}?{}">{}</a>',
                ngettext(
                    "%(sub)s has %(n)d undelivered event from its outage.",
                    "%(sub)s has %(n)d undelivered events from its outage.",
                    missed.count,
                )
                % {"sub": subscription, "n": missed.count},
                self.replay_url(),
                query,
                _("Replay them"),
            ),
            messages.INFO,
        )

    def replay_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_change_permission(request):
            raise PermissionDenied
        ids = [part for part in request.GET.get("ids", "").split(",") if part]
        try:
            subscriptions = list(Subscription.objects.filter(pk__in=ids))
        except ValidationError:  # malformed ids in a hand-edited URL
            subscriptions = []
        changelist = reverse(
            f"{self.admin_site.name}:webhook_subscriptions_subscription_changelist"
        )
        if not subscriptions:
            self.message_user(request, _("Select at least one subscription."), messages.WARNING)
            return HttpResponseRedirect(changelist)
        if request.method == "POST":
            form = ReplayForm(request.POST)
            if form.is_valid():
                queued = self._start(request, form, subscriptions)
                if queued is not None:
                    self.message_user(
                        request,
                        ngettext(
                            "%(n)d delivery queued for replay.",
                            "%(n)d deliveries queued for replay.",
                            queued,
                        )
                        % {"n": queued},
                        messages.SUCCESS,
                    )
                    return HttpResponseRedirect(changelist)
        else:
            # Default to the last hour: after an outage, one click replays it.
            since = timezone.localtime() - dt.timedelta(hours=1)
            initial = {"since": since.strftime("%Y-%m-%d %H:%M:%S")}
            initial.update(
                {key: request.GET[key] for key in ("since", "until") if request.GET.get(key)}
            )
            if request.GET.getlist("status"):
                initial["status"] = request.GET.getlist("status")
            form = ReplayForm(initial=initial)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Replay deliveries"),
            "form": form,
            "subscriptions": subscriptions,
            "opts": self.model._meta,
        }
        return render(request, "deliveries/admin/replay.html", context)

    def _start(
        self, request: HttpRequest, form: ReplayForm, subscriptions: list[Subscription]
    ) -> int | None:
        data = form.cleaned_data
        # Validate every subscription first, so a bad one queues nothing for the others.
        for subscription in subscriptions:
            try:
                replay.build_request(subscription, data["since"], data["until"], data["status"])
            except replay.ReplayError as exc:
                form.add_error(None, f"{subscription}: {exc.message}")
        if form.errors:
            return None
        queued = 0
        for subscription in subscriptions:
            try:
                queued += replay.start_replay(
                    subscription, data["since"], data["until"], data["status"]
                ).queued
            except replay.ReplayError as exc:
                form.add_error(None, f"{subscription}: {exc.message}")
                return None
        return queued


@admin.action(description=_("Replay deliveries…"), permissions=["change"])
def replay_selected(
    modeladmin: SubscriptionReplayMixin, request: HttpRequest, queryset: QuerySet[Subscription]
) -> HttpResponseRedirect:
    """Leads to the intermediate form (since/until/statuses) for the selected subscriptions."""
    ids = ",".join(str(pk) for pk in queryset.values_list("pk", flat=True))
    return HttpResponseRedirect(f"{modeladmin.replay_url()}?{urlencode({'ids': ids})}")


class SubscriptionAdmin(SubscriptionReplayMixin, SubscriptionHealthMixin, BaseSubscriptionAdmin):
    """The registry's admin with what needs the pipeline: health columns, replay, the offer to
    replay an outage when a subscription is enabled again."""

    # The registry's own actions (rotate, enable, disable), then the pipeline's. Declared here
    # rather than appended to the registry's class, which stays as its app defines it.
    actions = [*(BaseSubscriptionAdmin.actions or ()), send_test_events, replay_selected]


admin.site.unregister(Subscription)
admin.site.register(Subscription, SubscriptionAdmin)

from . import tenant_admin  # noqa: E402, F401 - the tenant list with health replaces the registry's

# The index links to the dashboard; a host that set its own index template keeps it.
if admin.site.index_template is None:
    admin.site.index_template = "deliveries/admin/index.html"
