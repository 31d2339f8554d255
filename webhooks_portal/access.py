"""Who is looking at the portal: the tenant of a portal link's session, or of the host's own
logged-in user through `WEBHOOKS["TENANT_RESOLVER"]`.

A portal link carries a `PortalGrant` id and its tenant key, signed with the project's
SECRET_KEY (django.core.signing, a salt of its own, so no other signed value of the project can
pass for a link), and its age; it can be opened for `PORTAL_LINK_MAX_AGE` seconds, and once
(shared/DESIGN.md, "Security"). Opening it stores the grant in the session for
`PORTAL_SESSION_AGE` seconds; the session lasts while the grant is open, so "Leave" and
`revoke()` end it for good. It grants the portal of that tenant and nothing else: it does not
log anybody in to the host's site.

The token travels in the query string (`/portal/access/?token=...`), never in the path: Django
logs the path of every refused request (`django.request`), and no token belongs in a log.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
import uuid
from dataclasses import dataclass
from urllib.parse import urlencode

from django.core import signing
from django.db.models.functions import Now
from django.http import HttpRequest
from django.urls import reverse

from subscriptions.models import Tenant
from webhooks_core.tenancy import resolve_tenant

from .conf import webhook_settings
from .models import PortalGrant

LINK_SALT = "webhooks.portal.link"
SESSION_KEY = "webhooks_portal"
# The query parameter of the entry URL that carries the token.
TOKEN_PARAMETER = "token"
# Where a request's checked link session is kept (read once per request).
_SESSION_CACHE = "_webhooks_portal_link"
_UNREAD = object()


class LinkExpired(Exception):
    """The link was genuine but is older than `PORTAL_LINK_MAX_AGE` (answer 403)."""


class LinkInvalid(Exception):
    """The link was not made by this site or was altered (answer 400)."""


class LinkUsed(Exception):
    """The link already opened a session, or was revoked (answer 403, start nothing)."""


@dataclass(frozen=True)
class PortalLink:
    url: str
    expires_at: dt.datetime


@dataclass(frozen=True)
class LinkClaim:
    """What a genuine, unexpired token says: the grant it names and that grant's tenant."""

    grant: uuid.UUID
    tenant: str


def make_token(tenant: str) -> str:
    """A new single-use link token for `tenant` (a key of an existing or new Tenant row):
    records a `PortalGrant` and signs its id. URL-safe (base64 and ':')."""
    grant = PortalGrant.objects.create(tenant=Tenant.objects.for_key(tenant))
    return signing.dumps(
        {"tenant": grant.tenant_id, "grant": str(grant.pk)}, salt=LINK_SALT, compress=False
    )


def entry_path(token: str) -> str:
    """The portal's entry URL path for `token`, the token in the query string."""
    return f"{reverse('webhooks_portal:enter')}?{urlencode({TOKEN_PARAMETER: token})}"


def read_token(token: str) -> LinkClaim:
    """The grant and tenant of a token made by `make_token`, not yet checked against its row.

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
    try:
        grant = uuid.UUID(str(value.get("grant")))
    except ValueError as exc:  # a link of the multi-use kind made before links were single-use
        raise LinkInvalid("The link names no grant.") from exc
    return LinkClaim(grant=grant, tenant=tenant)


def check_unused(claim: LinkClaim) -> None:
    """Raise LinkUsed if the claim's link already opened a session or was revoked."""
    if not PortalGrant.objects.open().filter(pk=claim.grant, used_at__isnull=True).exists():
        raise LinkUsed(str(claim.grant))


def make_link(request: HttpRequest, tenant: str) -> PortalLink:
    """An absolute single-use portal link for `tenant` and the time it stops opening."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return PortalLink(
        url=request.build_absolute_uri(entry_path(make_token(tenant))),
        expires_at=now + dt.timedelta(seconds=int(webhook_settings.PORTAL_LINK_MAX_AGE)),
    )


def redeem(request: HttpRequest, claim: LinkClaim) -> None:
    """Use the claim's link once: mark its grant used and limit this browser's portal to the
    grant's tenant for `PORTAL_SESSION_AGE` seconds.

    The grant is marked with one guarded UPDATE (unused and open), so of two concurrent
    openings one wins. Raises LinkUsed for the loser, a used link or a revoked one. Whatever
    portal session the browser had before is ended. The session key is cycled, so a session
    id planted before the link was opened does not inherit the portal (session fixation);
    whatever else the session held is kept.
    """
    won = (
        PortalGrant.objects.open()
        .filter(pk=claim.grant, tenant_id=claim.tenant, used_at__isnull=True)
        .update(used_at=Now())
    )
    if won != 1:
        raise LinkUsed(str(claim.grant))
    end_session(request)
    request.session.cycle_key()
    request.session[SESSION_KEY] = {
        "grant": str(claim.grant),
        "tenant": claim.tenant,
        "until": time.time() + int(webhook_settings.PORTAL_SESSION_AGE),
    }
    setattr(request, _SESSION_CACHE, _UNREAD)


def end_session(request: HttpRequest) -> None:
    """End this browser's portal-link session for good: its grant is closed, so the same
    session cookie, replayed, opens nothing."""
    session = getattr(request, "session", None)
    value = session.pop(SESSION_KEY, None) if session is not None else None
    grant = value.get("grant") if isinstance(value, dict) else None
    if grant:
        with contextlib.suppress(ValueError):  # not a grant id: nothing to close
            PortalGrant.objects.open().filter(pk=uuid.UUID(str(grant))).update(ended_at=Now())
    setattr(request, _SESSION_CACHE, _UNREAD)


def revoke(tenant: str) -> int:
    """End every open portal session of `tenant` and make its unused links unusable (the API's
    `POST /api/tenants/{key}/portal-sessions/revoke/`, the tenant admin's action).

    Returns how many grants (links and sessions) it closed.
    """
    return PortalGrant.objects.open().filter(tenant_id=tenant).update(ended_at=Now())


def link_session(request: HttpRequest) -> LinkClaim | None:
    """The grant and tenant of this browser's live portal-link session, if any. A session
    past its age, or whose grant was left or revoked, is dropped."""
    cached = getattr(request, _SESSION_CACHE, _UNREAD)
    if cached is None or isinstance(cached, LinkClaim):
        return cached
    claim = _live_claim(request)
    setattr(request, _SESSION_CACHE, claim)
    return claim


def _live_claim(request: HttpRequest) -> LinkClaim | None:
    session = getattr(request, "session", None)
    if session is None:
        return None
    value = session.get(SESSION_KEY)
    if not isinstance(value, dict):
        return None
    tenant = value.get("tenant")
    try:
        claim = LinkClaim(grant=uuid.UUID(str(value.get("grant"))), tenant=str(tenant))
    except ValueError:
        claim = None  # a session from before links were single-use: not honoured
    live = (
        claim is not None
        and isinstance(tenant, str)
        and float(value.get("until") or 0) > time.time()
        and PortalGrant.objects.open().filter(pk=claim.grant, tenant_id=tenant).exists()
    )
    if not live:
        session.pop(SESSION_KEY, None)
        return None
    return claim


def link_tenant(request: HttpRequest) -> str | None:
    """The tenant of a live portal-link session, if any."""
    claim = link_session(request)
    return claim.tenant if claim is not None else None


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


def displaced_tenant(request: HttpRequest, claim: LinkClaim) -> tuple[bool, str | None]:
    """Whether following `claim`'s link would replace what this browser sees, and what.

    Following a link never silently swaps a browser into another tenant (shared/DESIGN.md,
    "Security"): a live portal session of another tenant, or a logged-in host user who is not
    a user of the link's tenant (another tenant's, or none), must confirm first. Returns
    `(must_confirm, the tenant it has now or None)`. A fresh browser confirms nothing.
    """
    session_tenant = link_tenant(request)
    if session_tenant is not None and session_tenant != claim.tenant:
        return True, session_tenant
    user = getattr(request, "user", None)
    if session_tenant is None and user is not None and user.is_authenticated:
        own = resolve_tenant(request)
        if own != claim.tenant:
            return True, own
    return False, session_tenant
