"""What every portal page shares: the tenant check, CSRF, the security headers, rendering."""

from __future__ import annotations

import functools
import math
import secrets
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, cast
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render, resolve_url
from django.urls import NoReverseMatch, Resolver404, resolve
from django.views.decorators.csrf import csrf_protect
from rest_framework.request import Request

from webhooks_core.throttling import TenantThrottle, refund_refused

from .. import access, scope
from ..conf import webhook_settings

DEFAULT_FRAME_ANCESTORS = ["'self'"]
NONCE_ATTR = "webhooks_portal_nonce"


def content_security_policy(nonce: str) -> str:
    """The portal's CSP: its own files only, inline styles and scripts only with this
    response's nonce (a host's theme block), frames as `PORTAL_FRAME_ANCESTORS` allows."""
    ancestors = " ".join(webhook_settings.PORTAL_FRAME_ANCESTORS)
    return (
        "default-src 'self'; "
        f"script-src 'self' 'nonce-{nonce}'; "
        f"style-src 'self' 'nonce-{nonce}'; "
        "img-src 'self' data:; "
        "object-src 'none'; "
        "base-uri 'none'; "
        "form-action 'self'; "
        f"frame-ancestors {ancestors}"
    )


def secured(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Security headers on every portal response, error pages included.

    The pages show a tenant's data, so nothing is cached; the link in the address bar of the
    entry page is a credential, so no Referer leaves the site. When `PORTAL_FRAME_ANCESTORS`
    allows other sites, Django's X-Frame-Options (which knows no allow-list) is skipped and the
    CSP decides alone.
    """

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        nonce = secrets.token_urlsafe(16)
        setattr(request, NONCE_ATTR, nonce)
        try:
            response = view(request, *args, **kwargs)
        except Http404:
            # Rendered here rather than by the host's handler404, so that it carries these
            # headers too (a 404 says another tenant's object does not exist: never cached).
            response = page(request, "webhooks_portal/not_found.html", {}, status=404)
        except PermissionDenied:
            response = page(request, "webhooks_portal/forbidden.html", {}, status=403)
        response["Content-Security-Policy"] = content_security_policy(nonce)
        response["Cache-Control"] = "no-store, private"
        response["Referrer-Policy"] = "same-origin"
        response["X-Content-Type-Options"] = "nosniff"
        if list(webhook_settings.PORTAL_FRAME_ANCESTORS) != DEFAULT_FRAME_ANCESTORS:
            response.xframe_options_exempt = True
        return response

    return wrapper


def portal_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A page of one tenant's portal: `view(request, tenant, ...)`.

    Without a tenant the answer is a 403 page saying how to get in. CSRF is checked on every
    POST even if the host's middleware list lacks CsrfViewMiddleware.
    """

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        tenant = access.current_tenant(request)
        if tenant is None:
            return no_access(request)
        # Django's way of passing per-request state to views: an attribute on the request.
        request.webhooks_portal_tenant = tenant  # type: ignore[attr-defined]
        return view(request, tenant, *args, **kwargs)

    return secured(csrf_protect(wrapper))


def page(
    request: HttpRequest, template: str, context: dict[str, Any], *, status: int = 200
) -> HttpResponse:
    """Render a portal template with what the base template needs."""
    tenant = getattr(request, "webhooks_portal_tenant", None)
    base = {
        "portal_tenant": tenant,
        "portal_tenant_name": scope.display_name(tenant) if tenant else "",
        "portal_nonce": getattr(request, NONCE_ATTR, ""),
        "portal_link_session": access.link_tenant(request) is not None,
    }
    return render(request, template, {**base, **context}, status=status)


def no_access(request: HttpRequest) -> HttpResponse:
    """403: no portal link session and no tenant for the logged-in user (if any)."""
    user = getattr(request, "user", None)
    anonymous = user is None or not user.is_authenticated
    login_url = host_login_url() if anonymous else ""
    context = {"login_url": login_url, "next": request.get_full_path(), "anonymous": anonymous}
    return page(request, "webhooks_portal/no_access.html", context, status=403)


def host_login_url() -> str:
    """The host's login page (`LOGIN_URL`) when it leads somewhere, else "".

    Django's default `/accounts/login/` exists only if the host routes it (a fresh
    `startproject` does not): a path is offered only when it resolves in the URLconf, a route
    name only when it reverses. A URL on another site is the host's to vouch for.
    """
    if not settings.LOGIN_URL:
        return ""
    try:
        url = resolve_url(settings.LOGIN_URL)
    except NoReverseMatch:
        return ""
    parts = urlsplit(url)
    if parts.scheme or parts.netloc:
        return url
    try:
        resolve(parts.path)
    except Resolver404:
        return ""
    return url


def throttled(scope: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Spend the tenant's `THROTTLE_RATES[scope]` budget on each POST of the wrapped portal
    view ("test", "replay", "retry", "create"): the same counter as the API's TenantThrottle,
    so the portal is no way around the API's limits. Over budget: a 429 page with the wait. A
    POST the view refuses (4xx) gives its budget back."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, tenant: str, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method == "POST":
                throttle = TenantThrottle()
                budget = SimpleNamespace(throttle_scope=scope, throttle_tenant=lambda _: tenant)
                # The throttle reads only what an HttpRequest has too (user, META).
                if not throttle.allow_request(cast(Request, request), budget):
                    wait = math.ceil(throttle.wait() or 1)
                    response = page(
                        request, "webhooks_portal/throttled.html", {"wait": wait}, status=429
                    )
                    response["Retry-After"] = str(wait)
                    return response
            response = view(request, tenant, *args, **kwargs)
            refund_refused(request, response.status_code)  # a refused POST spends nothing
            return response

        return wrapper

    return decorate
