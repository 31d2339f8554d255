"""Endpoint pages: list with health, create, detail, edit, disable/enable, delete, test event,
secret rotation and replay. Every change goes through the services of the two apps."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods, require_POST

from deliveries import charts
from deliveries.conf import webhook_settings as pipeline_settings
from deliveries.models import Delivery
from deliveries.services import health, ordering, replay, states, waits
from deliveries.services.probes import SubscriptionInactive, send_test_event
from deliveries.services.simulation import simulate
from deliveries.summaries import with_last_error_kind
from subscriptions import services
from subscriptions.catalog import pinned_types
from subscriptions.models import Subscription
from webhooks_core.conf import webhook_settings

from .. import replays, scope
from ..forms import DATETIME_FORMAT, EndpointForm, ReplayForm, RotateForm, SimulationForm
from ..humanize import duration
from .base import page, portal_view, throttled

PAGE_SIZE = 25


def _endpoint(tenant: str, pk: object) -> Subscription:
    return get_object_or_404(scope.subscriptions(tenant), pk=pk)


def _detail(subscription: Subscription) -> str:
    return reverse("webhooks_portal:endpoint", kwargs={"pk": subscription.pk})


def default_replay_start(subscription: Subscription) -> dt.datetime:
    """Where the replay form starts: 24 hours ago, or earlier when the current failing run began
    before that. The run's first delivery was created before `failing_since` (written when its
    attempt ended, possibly after a wait in the queue), hence the hour of margin."""
    start = timezone.now() - dt.timedelta(hours=24)
    if subscription.failing_since:
        start = min(start, subscription.failing_since - dt.timedelta(hours=1))
    return timezone.localtime(start).replace(second=0, microsecond=0)


@portal_view
@require_http_methods(["GET", "HEAD"])
def endpoint_list(request: HttpRequest, tenant: str) -> HttpResponse:
    paginator = Paginator(scope.subscriptions(tenant), PAGE_SIZE)
    current = paginator.get_page(request.GET.get("page"))
    figures = health.subscription_health(list(current.object_list))
    rows = [
        {
            "endpoint": sub,
            "health": figures[sub.pk],
            "chart": charts.day_bars(figures[sub.pk].days, width=112, height=28),
        }
        for sub in current.object_list
    ]
    return page(
        request,
        "webhooks_portal/endpoint_list.html",
        {"rows": rows, "page_obj": current, "nav": "endpoints"},
    )


@portal_view
@require_http_methods(["GET", "HEAD", "POST"])
@throttled("create")
def endpoint_create(request: HttpRequest, tenant: str) -> HttpResponse:
    return _endpoint_form(request, tenant, None)


def _endpoint_form(
    request: HttpRequest, tenant: str, subscription: Subscription | None
) -> HttpResponse:
    """The add and the edit page: one form, checked by the API's serializer."""
    form = EndpointForm(request.POST or None, instance=subscription)
    if request.method == "POST" and form.is_valid():
        if subscription is None:
            created = _create(request, tenant, form)
            if created is not None:
                # The secret is shown in the answer to this POST and nowhere else: not kept in
                # the session or a message for a later page (the page is `no-store`).
                return _detail_page(request, tenant, created, secret=created.secret)
        else:
            form.save()
            messages.success(request, _("Endpoint saved."))
            return redirect(_detail(subscription))
    return page(
        request,
        "webhooks_portal/endpoint_form.html",
        {"form": form, "endpoint": subscription, "nav": "endpoints"},
        status=400 if form.errors else 200,
    )


@portal_view
@require_POST
@throttled("simulate")
def endpoint_create_preview(request: HttpRequest, tenant: str) -> HttpResponse:
    return _endpoint_preview(request, tenant, None)


@portal_view
@require_POST
@throttled("simulate")
def endpoint_edit_preview(request: HttpRequest, tenant: str, pk: object) -> HttpResponse:
    return _endpoint_preview(request, tenant, _endpoint(tenant, pk))


def _endpoint_preview(
    request: HttpRequest, tenant: str, subscription: Subscription | None
) -> HttpResponse:
    """The endpoint form again, as the user left it (nothing saved), with the preview panel:
    which of the tenant's last events the draft's types, filter and channels would have
    received (`deliveries.services.simulation`, as the simulate API)."""
    kept = tuple(subscription.event_types or ()) if subscription is not None else ()
    draft = SimulationForm(request.POST, kept=kept)
    # Unbound, with what was typed as its initial values: the draft's other fields (an
    # unfinished URL) are not judged before "Save".
    typed = {
        name: request.POST.getlist(name) if name == "event_types" else request.POST.get(name)
        for name in EndpointForm.base_fields
        if name in request.POST
    }
    form = EndpointForm(initial=typed, instance=subscription)
    simulation = None
    if draft.is_valid():
        data = draft.cleaned_data
        simulation = simulate(
            tenant,
            event_types=data["event_types"],
            filter=data["filter"],
            channels=data["channels"],
            limit=data["limit"],
        )
    return page(
        request,
        "webhooks_portal/endpoint_form.html",
        {
            "form": form,
            "endpoint": subscription,
            "nav": "endpoints",
            "draft": draft,
            "simulation": simulation,
        },
        status=200 if simulation is not None else 400,
    )


def _create(request: HttpRequest, tenant: str, form: EndpointForm) -> Subscription | None:
    """Create within the tenant's subscription limit (the same service and lock as the API);
    at the limit, the form says so and nothing is created."""
    with transaction.atomic():
        try:
            owner = services.tenant_for_new_subscription(tenant)
        except services.SubscriptionLimitReached as exc:
            form.add_error(None, str(exc))
            return None
        subscription = form.save(tenant_id=owner.pk)
    messages.success(request, _("Endpoint created."))
    return subscription


@portal_view
@require_http_methods(["GET", "HEAD"])
def endpoint_detail(request: HttpRequest, tenant: str, pk: object) -> HttpResponse:
    return _detail_page(request, tenant, _endpoint(tenant, pk))


def _detail_page(
    request: HttpRequest, tenant: str, subscription: Subscription, *, secret: str | None = None
) -> HttpResponse:
    """The endpoint's page; with `secret`, the answer to the create or rotate that made it,
    showing it this once."""
    figures = health.subscription_health([subscription])[subscription.pk]
    recent = scope.deliveries(tenant).filter(subscription=subscription)
    recent = with_last_error_kind(recent.select_related("event", "subscription"))[:10]
    waiting = Delivery.objects.unfinished().filter(subscription=subscription).count()
    blocked = ordering.blocked_keys(scope.deliveries(tenant).filter(subscription=subscription))
    return page(
        request,
        "webhooks_portal/endpoint_detail.html",
        {
            "endpoint": subscription,
            "health": figures,
            "chart": charts.day_bars(figures.days, width=196, height=40),
            "secret": secret,
            "recent": recent,
            "waiting": waiting,
            "waits": waits.endpoint_waits(subscription.pk),
            "blocked": blocked,
            "pinned_types": pinned_types(subscription),
            "overlap": duration(webhook_settings.SECRET_ROTATION_OVERLAP),
            "now": timezone.now(),
            "nav": "endpoints",
            "egress_ips": pipeline_settings.egress_ips,
        },
    )


@portal_view
@require_http_methods(["GET", "HEAD", "POST"])
def endpoint_edit(request: HttpRequest, tenant: str, pk: object) -> HttpResponse:
    return _endpoint_form(request, tenant, _endpoint(tenant, pk))


@portal_view
@require_http_methods(["GET", "HEAD", "POST"])
def endpoint_disable(request: HttpRequest, tenant: str, pk: object) -> HttpResponse:
    subscription = _endpoint(tenant, pk)
    if request.method == "POST":
        reason = _("Disabled in the portal.")
        waiting = states.disable(subscription, reason)
        if waiting is not None:
            # What this disabling discarded: deliveries being sent right now finish their
            # attempt and are not counted (the admin reports the same figure).
            messages.success(
                request,
                ngettext(
                    "Endpoint disabled; %(n)d delivery that was waiting was discarded. "
                    "Events published while it is disabled are kept: you can replay them "
                    "when you enable it again.",
                    "Endpoint disabled; %(n)d deliveries that were waiting were discarded. "
                    "Events published while it is disabled are kept: you can replay them "
                    "when you enable it again.",
                    waiting,
                )
                % {"n": waiting},
            )
        else:
            messages.info(request, _("The endpoint was already disabled."))
        return redirect(_detail(subscription))
    waiting = sum(health.waiting_deliveries([subscription.pk]).get(subscription.pk, {}).values())
    return page(
        request,
        "webhooks_portal/endpoint_disable.html",
        {"endpoint": subscription, "waiting": waiting, "nav": "endpoints"},
    )


@portal_view
@require_POST
def endpoint_enable(request: HttpRequest, tenant: str, pk: object) -> HttpResponse:
    subscription = _endpoint(tenant, pk)
    disabled_at, failing_since = subscription.disabled_at, subscription.failing_since
    if not services.enable_subscription(subscription):
        messages.info(request, _("The endpoint was already enabled."))
        return redirect(_detail(subscription))
    missed = replay.missed_during_outage(subscription, disabled_at, failing_since)
    if missed is None:
        messages.success(request, _("Endpoint enabled."))
        return redirect(_detail(subscription))
    messages.success(
        request,
        ngettext(
            "Endpoint enabled. It missed %(n)d event while it was failing or disabled: "
            "replay it below.",
            "Endpoint enabled. It missed %(n)d events while it was failing or disabled: "
            "replay them below.",
            missed.count,
        )
        % {"n": missed.count},
    )
    query = urlencode(
        {
            "since": timezone.localtime(missed.since).strftime(DATETIME_FORMAT),
            "status": list(replay.OUTAGE_STATUSES),
        },
        doseq=True,
    )
    return redirect(reverse("webhooks_portal:replay", kwargs={"pk": subscription.pk}) + "?" + query)


@portal_view
@require_http_methods(["GET", "HEAD", "POST"])
def endpoint_delete(request: HttpRequest, tenant: str, pk: object) -> HttpResponse:
    subscription = _endpoint(tenant, pk)
    if request.method == "POST":
        name = str(subscription)
        services.delete_subscription(subscription)
        messages.success(request, _("Endpoint %(name)s deleted.") % {"name": name})
        return redirect("webhooks_portal:endpoints")
    history = Delivery.objects.filter(subscription=subscription).count()
    return page(
        request,
        "webhooks_portal/endpoint_delete.html",
        {"endpoint": subscription, "history": history, "nav": "endpoints"},
    )


@portal_view
@require_POST
@throttled("test")
def endpoint_test(request: HttpRequest, tenant: str, pk: object) -> HttpResponse:
    subscription = _endpoint(tenant, pk)
    try:
        event = send_test_event(subscription).event
    except SubscriptionInactive as exc:
        messages.error(request, str(exc))
        return redirect(_detail(subscription))
    delivery = Delivery.objects.filter(event=event, subscription=subscription).first()
    messages.success(request, _("Test event sent."))
    if delivery is None:  # fan-out deferred (broker or database trouble): the sweep sends it
        return redirect(_detail(subscription))
    return redirect("webhooks_portal:delivery", pk=delivery.pk)


@portal_view
@require_http_methods(["GET", "HEAD", "POST"])
def endpoint_rotate(request: HttpRequest, tenant: str, pk: object) -> HttpResponse:
    subscription = _endpoint(tenant, pk)
    default = int(webhook_settings.SECRET_ROTATION_OVERLAP)
    form = RotateForm(request.POST if request.method == "POST" else None, default=default)
    if request.method == "POST" and form.is_valid():
        seconds = form.cleaned_data["overlap"]
        seconds = default if seconds is None else seconds
        secret = services.rotate_secret(subscription, overlap=seconds)
        if seconds:
            text = _(
                "New secret created. The old one keeps signing beside it for %(overlap)s, "
                "until %(until)s."
            ) % {
                "overlap": duration(seconds),
                "until": timezone.localtime(subscription.previous_secret_expires_at).strftime(
                    "%Y-%m-%d %H:%M:%S %Z"
                ),
            }
        else:
            text = _("New secret created. The old one no longer signs.")
        messages.success(request, text)
        return _detail_page(request, tenant, subscription, secret=secret)  # shown this once
    overlap = duration(default)
    rotating = (
        subscription.previous_secret_expires_at
        if subscription.previous_secret_expires_at
        and subscription.previous_secret_expires_at > timezone.now()
        else None
    )
    return page(
        request,
        "webhooks_portal/endpoint_rotate.html",
        {
            "endpoint": subscription,
            "overlap": overlap,
            "rotating": rotating,
            "form": form,
            "nav": "endpoints",
        },
    )


@portal_view
@require_http_methods(["GET", "HEAD", "POST"])
@throttled("replay")
def endpoint_replay(request: HttpRequest, tenant: str, pk: object) -> HttpResponse:
    subscription = _endpoint(tenant, pk)
    if request.method == "POST":
        form = ReplayForm(request.POST)
    else:
        initial = {"since": default_replay_start(subscription)}
        form = ReplayForm(request.GET or None, initial=initial)
        if request.GET:
            form.is_valid()  # show the prefilled values, and their errors if any
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            result = replay.start_replay(
                subscription, data["since"], data.get("until"), data["status"]
            )
        except replay.ReplayUnavailable as exc:
            messages.error(request, exc.message)
        except replay.ReplayError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            replays.remember(request, result)
            messages.success(
                request,
                ngettext(
                    "%(n)d delivery queued for replay.",
                    "%(n)d deliveries queued for replay.",
                    result.queued,
                )
                % {"n": result.queued},
            )
            return redirect(
                reverse("webhooks_portal:deliveries")
                + "?"
                + urlencode({"endpoint": subscription.pk})
            )
    return page(
        request,
        "webhooks_portal/endpoint_replay.html",
        {"endpoint": subscription, "form": form, "nav": "endpoints"},
        status=400 if request.method == "POST" and form.errors else 200,
    )
