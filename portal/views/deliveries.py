"""The delivery log: filters, one delivery with the exact request and its attempts, retry."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from deliveries.services import replay
from deliveries.services.sent import request_sent
from deliveries.summaries import with_last_error_kind
from subscriptions.models import EventType

from .. import replays, scope
from ..forms import DeliveryFilterForm
from .base import page, portal_view, throttled

PAGE_SIZE = 50
# Seconds between reloads of a page that shows a delivery still on its way.
REFRESH_SECONDS = 2


@portal_view
@require_http_methods(["GET", "HEAD"])
def delivery_list(request: HttpRequest, tenant: str) -> HttpResponse:
    endpoints = list(scope.subscriptions(tenant))
    form = DeliveryFilterForm(request.GET, endpoints=endpoints)
    queryset = with_last_error_kind(
        scope.deliveries(tenant).select_related("event", "subscription")
    )
    queryset = queryset.filter(**form.lookups()) if form.is_valid() else queryset.none()
    paginator = Paginator(queryset, PAGE_SIZE)
    current = paginator.get_page(request.GET.get("page"))
    filters = {k: v for k, v in request.GET.items() if k != "page" and v}
    unfinished = any(not d.is_finished for d in current.object_list)
    # A replay queued from this browser reloads the page until its task reopened every row:
    # until then the rows it will send again still show finished.
    chosen = form.cleaned_data.get("endpoint") if form.is_valid() else None
    replaying = replays.waiting(request, [chosen] if chosen else [s.pk for s in endpoints])
    return page(
        request,
        "webhooks_portal/delivery_list.html",
        {
            "form": form,
            "page_obj": current,
            "filter_query": urlencode(filters),
            "filtered": bool(filters),
            "type_names": EventType.objects.order_by("name").values_list("name", flat=True),
            "refresh": REFRESH_SECONDS if unfinished or replaying else None,
            "replaying": replaying,
            "nav": "deliveries",
        },
        status=200 if form.is_valid() else 400,
    )


@portal_view
@require_http_methods(["GET", "HEAD"])
def delivery_detail(request: HttpRequest, tenant: str, pk: int) -> HttpResponse:
    delivery = get_object_or_404(
        scope.deliveries(tenant).select_related("event", "subscription"), pk=pk
    )
    attempts = list(delivery.attempt_set.order_by("number"))
    return page(
        request,
        "webhooks_portal/delivery_detail.html",
        {
            "delivery": delivery,
            "attempts": attempts,
            "sent": request_sent(delivery),
            "refresh": None if delivery.is_finished else REFRESH_SECONDS,
            "nav": "deliveries",
        },
    )


@portal_view
@require_POST
@throttled("retry")
def delivery_retry(request: HttpRequest, tenant: str, pk: int) -> HttpResponse:
    delivery = get_object_or_404(scope.deliveries(tenant), pk=pk)
    try:
        attempt = replay.redeliver_one(delivery)
    except replay.ReplayError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Attempt %(n)d queued: sending again now.") % {"n": attempt})
    return redirect("webhooks_portal:delivery", pk=delivery.pk)
