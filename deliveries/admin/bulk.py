"""Bulk retry in the admin: "Retry the matching deliveries" on the filtered delivery list (a
confirmation page with the count first), and the read-only record of every bulk retry.

The delivery list pages by keyset and never counts, so Django's "select all N" is not offered
and an action applies to the rows shown; retrying what a search matches is therefore its own
page, reached from the list with the list's filters in its query string. It rebuilds the same
filtered queryset as the list (the changelist's own filters and search), counts the matches
once (a dry run, capped at `BULK_RETRY_MAX`) and, on POST, calls the bulk-retry service.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from webhooks_core.keyset import CURSOR_PARAM

from ..models import BulkRetry, BulkRetrySource
from ..services.bulk_retry import DEFAULT_RETRY_STATUSES, BulkRetryError, bulk_retry
from ..services.logsearch import DeliverySearch
from .common import ReadOnlyAdminMixin, seconds_display

#: The delivery list's own status filter (Django's field filter on `status`).
STATUS_PARAM = "status__exact"


def retry_matching_view(model_admin: admin.ModelAdmin, request: HttpRequest) -> HttpResponse:
    """GET: the count of what the list's filters (in the query string) match, and a confirm
    button; POST: retry them and go back to the list with the filters kept. Needs
    `change_delivery` (wrapped in `admin_site.admin_view` by the delivery admin)."""
    if not request.user.has_perm("deliveries.change_delivery"):
        raise PermissionDenied
    params = request.GET.copy()
    params.pop(CURSOR_PARAM, None)
    list_url = reverse(f"{model_admin.admin_site.name}:deliveries_delivery_changelist")
    back = f"{list_url}?{params.urlencode()}" if params else list_url
    try:
        changelist = model_admin.get_changelist_instance(request)
    except IncorrectLookupParameters:
        model_admin.message_user(request, _("These filters are not valid."), messages.ERROR)
        return HttpResponseRedirect(back)
    status = params.get(STATUS_PARAM)
    search = DeliverySearch(statuses=(status,) if status else ())
    criteria = {"admin_filters": {key: params.getlist(key) for key in params}}
    dry_run = request.method != "POST"
    try:
        result = bulk_retry(
            changelist.queryset,
            search,
            user=request.user,
            source=BulkRetrySource.ADMIN,
            dry_run=dry_run,
            criteria=criteria,
        )
    except BulkRetryError as exc:
        model_admin.message_user(request, exc.message, messages.ERROR)
        return HttpResponseRedirect(back)
    if not dry_run:
        model_admin.message_user(
            request,
            ngettext(
                "%(queued)d of %(count)d matching delivery queued for another attempt.",
                "%(queued)d of %(count)d matching deliveries queued for another attempt.",
                result.count,
            )
            % {"queued": result.queued, "count": result.count},
            messages.SUCCESS if result.queued else messages.WARNING,
        )
        return HttpResponseRedirect(back)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": _("Retry the matching deliveries"),
        "opts": model_admin.model._meta,
        "count": result.count,
        "statuses": [status] if status else list(DEFAULT_RETRY_STATUSES),
        "filters": [(key, ", ".join(params.getlist(key))) for key in params],
        "back": back,
    }
    return render(request, "deliveries/admin/retry_matching.html", context)


@admin.register(BulkRetry)
class BulkRetryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Who retried what, when: written by the service, never changed here."""

    list_display = ["id", "created", "username", "tenant", "source", "matched", "queued"]
    list_filter = ["source"]
    readonly_fields = (
        "created",
        "user",
        "username",
        "tenant",
        "source",
        "criteria",
        "matched",
        "queued",
    )
    fields = readonly_fields
    show_full_result_count = False

    created = seconds_display("created_at", _("created"))
