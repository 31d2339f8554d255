"""Opening the portal from a link, and leaving it."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods, require_POST

from .. import access, scope
from .base import page, secured

# Why a link is refused: (template variant, status).
REFUSALS: dict[type[Exception], tuple[str, int]] = {
    access.LinkExpired: ("expired", 403),
    access.LinkInvalid: ("invalid", 400),
    access.LinkUsed: ("used", 403),
}


@secured
@csrf_protect
@require_http_methods(["GET", "HEAD", "POST"])
def enter(request: HttpRequest) -> HttpResponse:
    """/portal/access/?token=...: open the link's tenant portal, then show its endpoints (the
    token leaves the address bar).

    A fresh browser enters on GET. A browser that already shows another tenant (a portal
    session, or a logged-in host user of another tenant or none) gets a page naming both
    tenants, and enters only by POSTing its form (CSRF-checked), so a link planted in a
    navigation cannot swap it silently. Expired: 403; altered or foreign: 400; already used
    or revoked: 403; none of them starts a session.
    """
    token = (request.POST if request.method == "POST" else request.GET).get(
        access.TOKEN_PARAMETER, ""
    )
    try:
        claim = access.read_token(token)
        current = access.link_session(request)
        if current is not None and current.grant == claim.grant:
            return redirect("webhooks_portal:endpoints")  # its own link, opened again (Back)
        access.check_unused(claim)
        must_confirm, shown = access.displaced_tenant(request, claim)
        if must_confirm and request.method != "POST":
            context = {
                "token": token,
                "token_parameter": access.TOKEN_PARAMETER,
                "link_tenant_name": scope.display_name(claim.tenant),
                "current_tenant_name": scope.display_name(shown) if shown else "",
            }
            return page(request, "webhooks_portal/link_confirm.html", context)
        if request.method == "HEAD":
            # A link checker or preview fetcher asking about the link must not spend it.
            return HttpResponse()
        access.redeem(request, claim)
    except (access.LinkExpired, access.LinkInvalid, access.LinkUsed) as exc:
        reason, status = REFUSALS[type(exc)]
        return page(request, "webhooks_portal/link_refused.html", {"reason": reason}, status=status)
    return redirect("webhooks_portal:endpoints")


@secured
@csrf_protect
@require_POST
def leave(request: HttpRequest) -> HttpResponse:
    """End the portal-link session for good (a host login, if any, is left alone)."""
    access.end_session(request)
    return page(request, "webhooks_portal/left.html", {})
