"""The webhooks dashboard: attempts per minute, the backlog, the unhealthiest endpoints.

An admin page of its own (`admin:deliveries_dashboard`), served under the delivery admin's
URLs and linked from the delivery list; it changes nothing of the admin site itself.
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

from subscriptions.models import Subscription

from .. import charts
from ..conf import webhook_settings
from ..services import clock, health


def dashboard_view(model_admin: admin.ModelAdmin, request: HttpRequest) -> HttpResponse:
    """The page, for staff (wrapped in `admin_site.admin_view` by the delivery admin)."""
    board = health.dashboard()
    limit = float(webhook_settings.CLOCK_OFFSET_LIMIT)
    clocks = clock.recent_offsets()
    context = {
        **model_admin.admin_site.each_context(request),
        "title": _("Webhooks dashboard"),
        "board": board,
        "chart": charts.minute_chart(board.minutes),
        "opts": model_admin.model._meta,
        "subscription_opts": Subscription._meta,
        "retry_queue": webhook_settings.RETRY_QUEUE,
        "max_countdown": webhook_settings.max_countdown,
        # Workers whose clock is off by more than CLOCK_OFFSET_LIMIT (deliveries.services.clock).
        "clock_limit": limit,
        "skewed_clocks": [row for row in clocks if abs(row.offset_seconds) > limit],
        "clocks": clocks,
    }
    return render(request, "deliveries/admin/dashboard.html", context)
