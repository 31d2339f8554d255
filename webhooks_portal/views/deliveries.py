"""The delivery log: filters, one delivery with the exact request and its attempts, retry."""

from __future__ import annotations

import hashlib

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods, require_POST

from deliveries.models import BulkRetrySource, DeliveryStatus
from deliveries.services import ordering, replay
from deliveries.services.bulk_retry import BulkRetryError, bulk_retry, retry_search
from deliveries.services.logsearch import DeliverySearch
from deliveries.services.sent import request_sent
from deliveries.summaries import with_last_error_kind
from subscriptions.models import EventType
from webhooks_core.keyset import NotFound, keyset_page

from .. import replays, scope
from ..forms import DeliveryFilterForm
from .base import page, portal_view, throttled

PAGE_SIZE = 50
# Seconds between reloads of a page that shows a delivery still on its way (the delivery's own
# page, and the log while a replay queued from this browser has not reopened its rows yet).
REFRESH_SECONDS = 2
# Above this many endpoints the log's endpoint filter takes an id instead of a <select>.
ENDPOINT_CHOICES_MAX = 100
ROW_TEMPLATE = "webhooks_portal/delivery_row.html"


def endpoint_choices(tenant: str) -> list | None:
    """The tenant's endpoints for the filter's <select>, or None when there are more than
    `ENDPOINT_CHOICES_MAX` (one bounded query either way)."""
    endpoints = list(scope.subscriptions(tenant)[: ENDPOINT_CHOICES_MAX + 1])
    return None if len(endpoints) > ENDPOINT_CHOICES_MAX else endpoints


def empty_state(tenant: str, form: DeliveryFilterForm, filtered: bool) -> str:
    """Why the log shows no row: "invalid" (the filter has errors, shown with them),
    "no_match" (a valid filter matches nothing, with a link to clear it) or "nothing_yet"
    (the tenant has no delivery at all). One indexed EXISTS, only when the page is empty."""
    if not form.is_valid():
        return "invalid"
    if filtered and scope.deliveries(tenant).exists():
        return "no_match"
    return "nothing_yet"


def filter_query(request: HttpRequest) -> str:
    """The log's search as a query string, without the page position (`cursor`)."""
    params = request.GET.copy()
    params.pop("cursor", None)
    for key in [k for k, values in params.lists() if not any(values)]:
        del params[key]
    return params.urlencode()


@portal_view
@require_http_methods(["GET", "HEAD"])
def delivery_list(request: HttpRequest, tenant: str) -> HttpResponse:
    """The log, newest first, in keyset pages (no count, no OFFSET: page 1,000 costs what page
    1 does), narrowed by the search form. Rows still on their way are refreshed in place by
    portal.js through `delivery_rows`, not by reloading the page."""
    form = DeliveryFilterForm(request.GET, endpoints=endpoint_choices(tenant))
    # The last answer of each row is summarized by its attempt's error kind (one subquery).
    queryset = with_last_error_kind(
        scope.deliveries(tenant).select_related("event", "subscription")
    )
    queryset = form.search().apply(queryset) if form.is_valid() else queryset.none()
    try:
        current = keyset_page(request, queryset, size=PAGE_SIZE)
    except NotFound:
        raise Http404(_("This page of the log no longer exists.")) from None
    query = filter_query(request)
    # A replay queued from this browser reloads the page until its task reopened every row:
    # until then the rows it will send again still show finished.
    chosen = form.cleaned_data.get("endpoint") if form.is_valid() else None
    # Without an endpoint chosen: the tenant's endpoints among those the session watches
    # (never a list of all of them).
    watched = [chosen] if chosen else replays.watched_endpoints(request)
    shown = scope.subscriptions(tenant).filter(pk__in=watched).values_list("pk", flat=True)
    replaying = replays.waiting(request, list(shown) if watched else [])
    return page(
        request,
        "webhooks_portal/delivery_list.html",
        {
            "form": form,
            "keyset": current,
            "deliveries": current.rows,
            "filtered": bool(query),
            "filter_query": query,
            "empty": "" if current.rows else empty_state(tenant, form, bool(query)),
            "type_names": EventType.objects.order_by("name").values_list("name", flat=True),
            "refresh": REFRESH_SECONDS if replaying else None,
            "poll": any(not d.is_finished for d in current.rows),
            "replaying": replaying,
            "nav": "deliveries",
        },
        status=200 if form.is_valid() else 400,
    )


@portal_view
@require_http_methods(["GET", "HEAD", "POST"])
@throttled("bulk_retry")
def delivery_bulk_retry(request: HttpRequest, tenant: str) -> HttpResponse:
    """The log's "Retry the matches": GET counts what its search (in the query string) matches
    among the tenant's deliveries and asks to confirm; POST retries them
    (`deliveries.services.bulk_retry`: capped, recorded, harmless twice) and goes back to the
    log with the search kept. Only this tenant's deliveries are counted or touched."""
    form = DeliveryFilterForm(request.GET, endpoints=endpoint_choices(tenant))
    query = filter_query(request)
    back = reverse("webhooks_portal:deliveries") + (f"?{query}" if query else "")
    if not form.is_valid():
        return redirect(back)
    dry_run = request.method != "POST"
    try:
        result = bulk_retry(
            scope.deliveries(tenant),
            form.search(),
            user=request.user,
            tenant=tenant,
            source=BulkRetrySource.PORTAL,
            dry_run=dry_run,
        )
    except BulkRetryError as exc:
        if not dry_run:
            messages.error(request, exc.message)
            return redirect(back)
        result, problem = None, exc.message
    else:
        problem = ""
    if not dry_run:
        assert result is not None
        messages.success(
            request,
            ngettext(
                "%(queued)d of %(count)d matching delivery queued: sending again now.",
                "%(queued)d of %(count)d matching deliveries queued: sending again now.",
                result.count,
            )
            % {"queued": result.queued, "count": result.count},
        )
        return redirect(back)
    search = retry_search_or_none(form)
    return page(
        request,
        "webhooks_portal/delivery_bulk_retry.html",
        {
            "count": result.count if result else None,
            "problem": problem,
            "statuses": [DeliveryStatus(s).label for s in (search.statuses if search else ())],
            "filter_query": query,
            "back": back,
            "nav": "deliveries",
        },
        status=200 if result else 400,
    )


def retry_search_or_none(form: DeliveryFilterForm) -> DeliverySearch | None:
    """The search a retry of the form's matches runs (default statuses filled in), or None."""
    try:
        return retry_search(form.search())
    except BulkRetryError:
        return None


def row_ids(raw: str) -> list[int]:
    """`?ids=1,2,3`: at most `PAGE_SIZE` delivery ids; anything else is left out."""
    ids = []
    for part in raw.split(",")[:PAGE_SIZE]:
        part = part.strip()
        if part.isascii() and part.isdigit() and len(part) <= 18:
            ids.append(int(part))
    return ids


@portal_view
@require_http_methods(["GET"])
def delivery_rows(request: HttpRequest, tenant: str) -> HttpResponse:
    """The log's rows `?ids=` as rendered HTML, for portal.js to refresh unfinished rows in
    place: `{"rows": {"<id>": "<tr>...</tr>"}, "unfinished": [<id>, ...]}`.

    One indexed query by primary key, scoped to the tenant (other tenants' ids are absent). The
    ETag is a digest of the rows' states: a poll sent with `If-None-Match` while nothing
    changed is a 304 with no body (the rows are rendered only when something did).
    """
    ids = row_ids(request.GET.get("ids", ""))
    rows = list(
        with_last_error_kind(scope.deliveries(tenant).filter(pk__in=ids))
        .select_related("event", "subscription")
        .order_by("-created_at", "-pk")
    )
    digest = hashlib.sha256(
        repr([(d.pk, d.status, d.attempts, d.updated_at.isoformat()) for d in rows]).encode()
    ).hexdigest()[:32]
    etag = f'"{digest}"'
    if etag in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
        response = HttpResponse(status=304)
    else:
        response = JsonResponse(
            {
                "rows": {
                    str(d.pk): render_to_string(
                        ROW_TEMPLATE, {"d": d, "show_endpoint": True}, request
                    )
                    for d in rows
                },
                "unfinished": [d.pk for d in rows if not d.is_finished],
            }
        )
    response["ETag"] = etag
    return response


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


@portal_view
@require_POST
@throttled("retry")
def delivery_skip(request: HttpRequest, tenant: str, pk: int) -> HttpResponse:
    """Skip the head of a blocked ordering key: discarded for good (recorded with who did it),
    and the next delivery of its key is sent. Another tenant's delivery is a 404."""
    delivery = get_object_or_404(scope.deliveries(tenant), pk=pk)
    try:
        released = ordering.skip(delivery, _("the portal (%(user)s)") % {"user": who(request)})
    except ordering.SkipError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            _("Skipped: this delivery will not be sent. The next one of its key is on its way.")
            if released
            else _("Skipped: this delivery will not be sent."),
        )
    return redirect("webhooks_portal:delivery", pk=delivery.pk)


def who(request: HttpRequest) -> str:
    """The name a skip is recorded with: the logged-in user's, or the portal link's session."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return user.get_username()
    return _("portal link")
