"""An endpoint's version of one declared event type: what it receives now, a preview of
another version rendered from its own last event of that type, and the switch."""

from __future__ import annotations

import json
import logging

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from deliveries.services.previews import Preview, version_preview
from subscriptions import services
from subscriptions.catalog import PinError, pinned_types
from subscriptions.contracts import ContractError

from .. import scope
from ..forms import VersionForm
from .base import page, portal_view

logger = logging.getLogger(__name__)


def pretty(value: object) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


@portal_view
@require_http_methods(["GET", "HEAD", "POST"])
def endpoint_version(request: HttpRequest, tenant: str, pk: object, name: str) -> HttpResponse:
    subscription = get_object_or_404(scope.subscriptions(tenant), pk=pk)
    pinned = next((p for p in pinned_types(subscription) if p.name == name), None)
    if pinned is None:
        raise Http404("This endpoint receives no declared event type of that name.")
    if request.method == "POST":
        form = VersionForm(request.POST, pinned=pinned)
        if form.is_valid():
            version = form.cleaned_data["version"]
            try:
                services.pin_version(subscription, name, version)
            except PinError as exc:
                form.add_error("version", str(exc))
            else:
                messages.success(
                    request,
                    _("This endpoint now receives %(name)s in version %(version)s.")
                    % {"name": name, "version": version},
                )
                return redirect(reverse("webhooks_portal:endpoint", kwargs={"pk": subscription.pk}))
        wanted = pinned.current
    else:
        newest = pinned.choices()[-1].version
        form = VersionForm(request.GET or {"version": newest}, pinned=pinned)
        wanted = form.cleaned_data["version"] if form.is_valid() else pinned.current
    previews: dict[int, Preview | None] = {}
    for version in dict.fromkeys([pinned.current, wanted]):
        try:
            previews[version] = version_preview(subscription, name, version)
        except ContractError:
            logger.exception("preview of %s v%s for endpoint %s failed", name, version, pk)
            previews[version] = None
    current, shown = previews[pinned.current], previews[wanted]
    return page(
        request,
        "webhooks_portal/endpoint_version.html",
        {
            "endpoint": subscription,
            "pinned": pinned,
            "form": form,
            "wanted": wanted,
            "current_preview": current,
            "wanted_preview": shown,
            "current_body": pretty(current.body) if current else "",
            "wanted_body": pretty(shown.body) if shown else "",
            "nav": "endpoints",
        },
        status=400 if form.errors else 200,
    )
