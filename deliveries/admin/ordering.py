"""What the admin shows and does about ordered delivery: the subscription page's panel of
blocked ordering keys (which delivery holds each key, why, since when) with "Retry now" and
"Skip" on its head, and the delivery page's "Skip" (deliveries/services/ordering.py does the
work; these are thin)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext as _

from subscriptions.models import Subscription

from .. import summaries
from ..models import WAITING, Delivery
from ..services import ordering
from .common import at_seconds, status_badge

PANEL_SIZE = 20


def can_skip(delivery: Delivery) -> bool:
    """A keyed delivery waiting for an attempt: skipping it releases its key."""
    return delivery.ordering_key is not None and delivery.status in WAITING


def ordering_panel(model_admin: admin.ModelAdmin, request: HttpRequest, obj: Subscription) -> str:
    """The subscription's blocked ordering keys as an HTML block for its change page; empty
    when no key is blocked (most endpoints: no panel at all)."""
    blocked = ordering.blocked_keys(
        Delivery.objects.filter(subscription_id=obj.pk), limit=PANEL_SIZE
    )
    if not blocked:
        return ""
    site = model_admin.admin_site.name
    rows = []
    for item in blocked:
        head = item.head
        rows.append(
            {
                "key": item.key,
                "held": item.held,
                "held_since": at_seconds(item.held_since),
                "head": head,
                "head_url": reverse(f"{site}:deliveries_delivery_change", args=[head.pk])
                if head
                else "",
                "badge": status_badge(head.status, head.waiting_for) if head else "",
                "answer": (summaries.last_answer(head) or head.last_error) if head else "",
                "next_attempt": at_seconds(head.next_attempt_at) if head else "",
                "retry_url": reverse(f"{site}:deliveries_delivery_send_again", args=[head.pk])
                if head
                else "",
                "skip_url": reverse(f"{site}:deliveries_delivery_skip", args=[head.pk])
                if head and can_skip(head)
                else "",
            }
        )
    return render_to_string(
        "deliveries/admin/ordering_panel.html",
        {"rows": rows, "can_act": request.user.has_perm("deliveries.change_delivery")},
        request=request,
    )


def skip_view(model_admin: admin.ModelAdmin, request: HttpRequest, object_id: str) -> HttpResponse:
    """POST: discard a waiting keyed delivery for good (recorded with the user's name) and
    release the next delivery of its key; back to the delivery's page."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if not request.user.has_perm("deliveries.change_delivery"):
        raise PermissionDenied
    delivery = model_admin.get_object(request, object_id)
    if delivery is None:
        raise Http404
    try:
        released = ordering.skip(delivery, request.user.get_username())
    except ordering.SkipError as exc:
        model_admin.message_user(request, str(exc), messages.WARNING)
    else:
        model_admin.message_user(
            request,
            _("Skipped: discarded for good. %(n)d delivery of its key released.") % {"n": released}
            if released
            else _("Skipped: discarded for good. Nothing of its key was waiting behind it."),
            messages.SUCCESS,
        )
    site = model_admin.admin_site.name
    return HttpResponseRedirect(reverse(f"{site}:deliveries_delivery_change", args=[delivery.pk]))
