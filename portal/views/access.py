"""Opening the portal from a link, and leaving it."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods, require_POST

from .. import access
from .base import page, secured


@secured
@require_http_methods(["GET", "HEAD"])
def enter(request: HttpRequest, token: str) -> HttpResponse:
    """GET /portal/access/<token>/: start the tenant's portal session, then show its
    endpoints (the token leaves the address bar). Expired: 403; altered or foreign: 400."""
    try:
        tenant = access.read_token(token)
    except access.LinkExpired:
        return page(request, "webhooks_portal/link_refused.html", {"expired": True}, status=403)
    except access.LinkInvalid:
        return page(request, "webhooks_portal/link_refused.html", {"expired": False}, status=400)
    access.start_session(request, tenant)
    return redirect("webhooks_portal:endpoints")


@secured
@csrf_protect
@require_POST
def leave(request: HttpRequest) -> HttpResponse:
    """End the portal-link session (a host login, if any, is left alone)."""
    access.end_session(request)
    return page(request, "webhooks_portal/left.html", {})
