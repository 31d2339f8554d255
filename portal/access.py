"""Who is looking at the portal: the tenant of a portal link's session, or of the host's own
logged-in user through `WEBHOOKS["TENANT_RESOLVER"]`.

A portal link carries the tenant key signed with the project's SECRET_KEY (django.core.signing,
a salt of its own, so no other signed value of the project can pass for a link) and its age; it
can be opened for `PORTAL_LINK_MAX_AGE` seconds. Opening it stores the tenant in the session
for `PORTAL_SESSION_AGE` seconds. That session grants the portal of that tenant and nothing
else: it does not log anybody in to the host's site.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from django.core import signing
from django.http import HttpRequest
from django.urls import reverse

from subscriptions.tenancy import resolve_tenant

from .conf import webhook_settings

LINK_SALT = "webhooks.portal.link"
SESSION_KEY = "webhooks_portal"


class LinkExpired(Exception):
    """The link was genuine but is older than `PORTAL_LINK_MAX_AGE` (answer 403)."""


class LinkInvalid(Exception):
    """The link was not made by this site or was altered (answer 400)."""


@dataclass(frozen=True)
class PortalLink:
    url: str
    expires_at: dt.datetime


def make_token(tenant: str) -> str:
    """A signed token naming `tenant`; URL-safe (base64 and ':')."""
    return signing.dumps({"tenant": tenant}, salt=LINK_SALT, compress=False)


def read_token(token: str) -> str:
    """The tenant key of a token made by `make_token`.

    Raises LinkExpired when it is older than `PORTAL_LINK_MAX_AGE` seconds and LinkInvalid when
    it was altered, truncated or signed with another key or salt.
    """
    try:
        value = signing.loads(
            token, salt=LINK_SALT, max_age=int(webhook_settings.PORTAL_LINK_MAX_AGE)
        )
    except signing.SignatureExpired as exc:
        raise LinkExpired(str(exc)) from exc
    except signing.BadSignature as exc:
        raise LinkInvalid(str(exc)) from exc
    tenant = value.get("tenant") if isinstance(value, dict) else None
    if not isinstance(tenant, str) or not tenant:
        raise LinkInvalid("The link names no tenant.")
    return tenant


def make_link(request: HttpRequest, tenant: str) -> PortalLink:
    """An absolute portal link for `tenant` and the time it stops opening."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    path = reverse("webhooks_portal:enter", kwargs={"token": make_token(tenant)})
    return PortalLink(
        url=request.build_absolute_uri(path),
        expires_at=now + dt.timedelta(seconds=int(webhook_settings.PORTAL_LINK_MAX_AGE)),
    )


def start_session(request: HttpRequest, tenant: str) -> None:
    """Limit this browser's portal to `tenant` for `PORTAL_SESSION_AGE` seconds.

    The session key is cycled first, so a session id planted before the link was opened does
    not inherit the portal (session fixation); whatever else the session held is kept.
    """
    request.session.cycle_key()
    request.session[SESSION_KEY] = {
        "tenant": tenant,
        "until": time.time() + int(webhook_settings.PORTAL_SESSION_AGE),
    }


def end_session(request: HttpRequest) -> None:
    request.session.pop(SESSION_KEY, None)


def link_tenant(request: HttpRequest) -> str | None:
    """The tenant of a live portal-link session, if any; an expired one is dropped."""
    session = getattr(request, "session", None)
    if session is None:
        return None
    value = session.get(SESSION_KEY)
    if not isinstance(value, dict):
        return None
    if float(value.get("until") or 0) <= time.time():
        session.pop(SESSION_KEY, None)
        return None
    tenant = value.get("tenant")
    return tenant if isinstance(tenant, str) and tenant else None


def current_tenant(request: HttpRequest) -> str | None:
    """The tenant whose portal this request sees, or None.

    A portal link's session comes first: it was opened on purpose and names one tenant. Without
    one, the host's logged-in user is mapped by `WEBHOOKS["TENANT_RESOLVER"]`.
    """
    tenant = link_tenant(request)
    if tenant is not None:
        return tenant
    return resolved_tenant(request)


def resolved_tenant(request: HttpRequest) -> str | None:
    """The tenant of the host's logged-in user, through `WEBHOOKS["TENANT_RESOLVER"]`."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    return resolve_tenant(request)
