"""The subscription admin as seen by the pipeline: health columns, test events, replay (an
action, a form and a change-form link), a link to the subscription's deliveries, and the offer
to replay an outage when a subscription is enabled again.

The registry's admin (subscriptions/admin.py) knows nothing of deliveries and stays registered
as its app defines it; `PipelineExtension` plugs into it with
`SubscriptionAdmin.register_extension` (in deliveries/admin/__init__.py).
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.html import format_html
from django.utils.timesince import timesince
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from subscriptions.admin import Enabled, SubscriptionAdmin, SubscriptionAdminExtension
from subscriptions.models import Subscription

from .. import charts
from ..forms import ReplayForm
from ..models import DeliveryStatus
from ..services import health, replay, states, waits
from ..services.probes import send_test_event
from .common import REPLAY_URL_NAME, prefilled_replay_url, replay_url
from .notices import notices_panel
from .ordering import ordering_panel


def waits_panel(request: HttpRequest, obj: Subscription) -> str:
    """What the endpoint's rate and caps hold back now, and how long its attempts of the last
    hour waited before being sent (services.waits): throttling never hides latency."""
    return render_to_string(
        "deliveries/admin/waits_panel.html",
        {"waits": waits.endpoint_waits(obj.pk), "subscription": obj},
        request=request,
    )


# --- Health columns: figures computed for the whole page in a few grouped queries -----------


def _health(obj: Subscription) -> health.Health | None:
    return getattr(obj, "webhooks_health", None)


@admin.display(description=_("success 24 h"))
def success_rate(obj: Subscription) -> str:
    figures = _health(obj)
    if figures is None:
        return "-"
    return charts.success_rate_html(figures.succeeded_24h, figures.attempts_24h)


@admin.display(description=_("p95 24 h"))
def p95_latency(obj: Subscription) -> str:
    figures = _health(obj)
    return charts.p95_text(figures.p95_ms, figures.p95_over) if figures else "-"


@admin.display(description=_("failures in a row"))
def failures_in_a_row(obj: Subscription) -> str:
    figures = _health(obj)
    count = figures.failures_in_a_row if figures else 0
    if not count:
        return "0"
    return format_html('<b style="color:#c62828">{}</b>', count)


@admin.display(description=_("last success"), ordering="last_success_at")
def last_success(obj: Subscription) -> str:
    if not obj.last_success_at:
        return "-"
    return format_html(
        '<span title="{}">{}</span>',
        obj.last_success_at.isoformat(),
        _("%(ago)s ago") % {"ago": timesince(obj.last_success_at, timezone.now(), depth=1)},
    )


@admin.display(description=_("last 7 days"))
def days(obj: Subscription) -> str:
    figures = _health(obj)
    return charts.day_bars(figures.days) if figures else "-"


# --- Actions ---------------------------------------------------------------------------------


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


@admin.action(description=_("Replay deliveries…"), permissions=["change"])
def replay_selected(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Subscription]
) -> HttpResponseRedirect:
    """Leads to the intermediate form (since/until/statuses) for the selected subscriptions."""
    ids = ",".join(str(pk) for pk in queryset.values_list("pk", flat=True))
    return HttpResponseRedirect(f"{replay_url(modeladmin)}?{urlencode({'ids': ids})}")


# --- The replay form -------------------------------------------------------------------------


def replay_view(model_admin: SubscriptionAdmin, request: HttpRequest) -> HttpResponse:
    """Replay from the admin: an intermediate form (since/until/statuses); the work runs in a
    Celery task, the page answers how many were queued."""
    if not model_admin.has_change_permission(request):
        raise PermissionDenied
    ids = [part for part in request.GET.get("ids", "").split(",") if part]
    try:
        subscriptions = list(Subscription.objects.filter(pk__in=ids))
    except ValidationError:  # malformed ids in a hand-edited URL
        subscriptions = []
    changelist = reverse(
        f"{model_admin.admin_site.name}:webhook_subscriptions_subscription_changelist"
    )
    if not subscriptions:
        model_admin.message_user(request, _("Select at least one subscription."), messages.WARNING)
        return HttpResponseRedirect(changelist)
    if request.method == "POST":
        form = ReplayForm(request.POST)
        if form.is_valid():
            queued = _start(form, subscriptions)
            if queued is not None:
                model_admin.message_user(
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
        initial: dict[str, str | list[str]] = {"since": since.strftime("%Y-%m-%d %H:%M:%S")}
        initial.update(
            {key: request.GET[key] for key in ("since", "until") if request.GET.get(key)}
        )
        if request.GET.getlist("status"):
            initial["status"] = request.GET.getlist("status")
        form = ReplayForm(initial=initial)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": _("Replay deliveries"),
        "form": form,
        "subscriptions": subscriptions,
        "opts": model_admin.model._meta,
    }
    return render(request, "deliveries/admin/replay.html", context)


def _start(form: ReplayForm, subscriptions: list[Subscription]) -> int | None:
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


# --- The extension ---------------------------------------------------------------------------


class PipelineExtension(SubscriptionAdminExtension):
    """Everything above, plugged into the registry's subscription admin."""

    list_display = (success_rate, p95_latency, failures_in_a_row, last_success, days)
    actions = (send_test_events, replay_selected)

    def get_urls(self, model_admin: SubscriptionAdmin) -> list[URLPattern]:
        view = model_admin.admin_site.admin_view(lambda request: replay_view(model_admin, request))
        return [path("replay/", view, name=REPLAY_URL_NAME)]

    def prepare_page(
        self, model_admin: SubscriptionAdmin, request: HttpRequest, page: list[Subscription]
    ) -> None:
        figures = health.subscription_health(page)
        for obj in page:
            # Read by the list columns above (the change list renders this page's rows).
            obj.webhooks_health = figures.get(obj.pk)  # type: ignore[attr-defined]

    def object_panels(
        self, model_admin: SubscriptionAdmin, request: HttpRequest, obj: Subscription
    ) -> list[str]:
        """The subscription's waits on its rate and caps, its blocked ordering keys (if any),
        and its latest operational notices, each with its replay link."""
        return [
            panel
            for panel in (
                waits_panel(request, obj),
                ordering_panel(model_admin, request, obj),
                notices_panel(model_admin, request, obj),
            )
            if panel
        ]

    def object_links(
        self, model_admin: SubscriptionAdmin, request: HttpRequest, obj: Subscription
    ) -> list[tuple[str, str | Promise, str]]:
        site = model_admin.admin_site.name
        deliveries = reverse(f"{site}:deliveries_delivery_changelist")
        return [
            ("replay-link", _("Replay deliveries…"), f"{replay_url(model_admin)}?ids={obj.pk}"),
            (
                "deliveries-link",
                _("Deliveries"),
                f"{deliveries}?{urlencode({'subscription__id__exact': obj.pk})}",
            ),
        ]

    def disable_consequences(
        self, model_admin: SubscriptionAdmin, request: HttpRequest, subscription: Subscription
    ) -> list[str]:
        """What waits for the subscription and would be discarded by disabling it."""
        waiting = health.waiting_deliveries([subscription.pk]).get(subscription.pk, {})
        total = sum(waiting.values())
        if not total:
            return [str(_("Nothing is waiting to be sent; nothing will be discarded."))]
        detail = ", ".join(
            f"{count} {DeliveryStatus(status).label.lower()}" for status, count in waiting.items()
        )
        return [
            ngettext(
                "%(n)d delivery waiting to be sent (%(detail)s) will be discarded; it can be "
                "replayed after enabling the subscription again.",
                "%(n)d deliveries waiting to be sent (%(detail)s) will be discarded; they can "
                "be replayed after enabling the subscription again.",
                total,
            )
            % {"n": total, "detail": detail}
        ]

    def after_disable(
        self,
        model_admin: SubscriptionAdmin,
        request: HttpRequest,
        subscriptions: list[Subscription],
        reason: str,
    ) -> None:
        """Discard what waits for the subscriptions just disabled (the admin calls this in the
        disabling's transaction, before the `subscription_disabled` receivers) and report how
        many this discarded."""
        discarded = sum(
            states.discard(states.waiting_for(s.pk), states.disabled_reason(reason))
            for s in subscriptions
        )
        model_admin.message_user(
            request,
            ngettext(
                "%(n)d waiting delivery was discarded (status “discarded”: replay it after "
                "enabling the subscription again).",
                "%(n)d waiting deliveries were discarded (status “discarded”: replay them after "
                "enabling the subscription again).",
                discarded,
            )
            % {"n": discarded},
            messages.WARNING if discarded else messages.INFO,
        )

    def after_enable(self, enabled: Enabled) -> None:
        """Offer to replay what the subscription missed while it was failing or disabled."""
        model_admin, request, subscription = (
            enabled.model_admin,
            enabled.request,
            enabled.subscription,
        )
        missed = replay.missed_during_outage(
            subscription, enabled.disabled_at, enabled.failing_since
        )
        if missed is None:
            return
        model_admin.message_user(
            request,
            format_html(
                '{} <a class="replay-offer" href="{}">{}</a>',
                ngettext(
                    "%(sub)s has %(n)d undelivered event from its outage.",
                    "%(sub)s has %(n)d undelivered events from its outage.",
                    missed.count,
                )
                % {"sub": subscription, "n": missed.count},
                prefilled_replay_url(
                    model_admin, subscription.pk, missed.since, replay.OUTAGE_STATUSES
                ),
                _("Replay them"),
            ),
            messages.INFO,
        )
