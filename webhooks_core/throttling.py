"""Request budgets per user and per tenant, and a bound on failed logins.

DRF throttles (`rest_framework.throttling.SimpleRateThrottle`) with their rates in
`WEBHOOKS["THROTTLE_RATES"]`, read through the settings object so `override_settings` works.
A view names its scope (`throttle_scope`, or `throttle_scopes` by action): "publish", "test",
"replay", "retry", "create". Each scope's rate applies twice: to each user (`UserThrottle`) and
to each tenant (`TenantThrottle`, the tenant the request acts on), so neither one token nor one
customer's many users can flood the others. Over the budget: 429 with Retry-After. A request
that is refused (any 4xx but 429: not found, conflict, invalid) did nothing and spends nothing:
its budget is given back when the answer is known (`refund_refused`, called by every API view).

Counters live in Django's default cache: use a shared one (Redis) when the API runs in several
processes, or each process counts alone. If the cache fails, requests go through (logged): a
throttle protects capacity, it must not take the API down.
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any

from django.core.cache import cache as default_cache
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from .clientaddr import client_address
from .conf import DEFAULTS, webhook_settings
from .tenancy import resolve_tenant

logger = logging.getLogger(__name__)

# Where a request keeps the budget entries it spent: (cache, key, timestamp, window seconds).
_SPENT_ATTRIBUTE = "_webhooks_throttle_spent"


def refund_refused(request: Any, status_code: int) -> None:
    """Give back the budget `request` spent if its answer refused it (4xx other than 429): a
    404, 409 or 400 did nothing, so it must not use up the tenant's or the user's budget for
    what does (shared/DESIGN.md, "Tenants": refused requests spend no throttle budget)."""
    if not 400 <= status_code < 500 or status_code == 429:
        return
    for cache, key, spent_at, window in getattr(request, _SPENT_ATTRIBUTE, None) or ():
        try:
            history = list(cache.get(key, []))
            if spent_at in history:
                history.remove(spent_at)
                cache.set(key, history, window)
        except Exception as exc:  # whatever the cache backend raises (Redis down...)
            logger.warning("throttle refund skipped, cache unavailable: %s", exc)
    setattr(request, _SPENT_ATTRIBUTE, [])


def cache_key(prefix: str, ident: str) -> str:
    """`prefix:ident`, the ident hashed when long (tenant keys reach 255 characters; memcached
    refuses keys over 250) or not plain ASCII."""
    if len(ident) > 64 or not ident.isascii() or not ident.isprintable():
        ident = "sha256-" + hashlib.sha256(ident.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{prefix}:{ident}"


def rate_for(scope: str) -> str | None:
    """The rate of `scope` ("200/second", "10/minute"...) or None (not throttled): the
    project's `THROTTLE_RATES` entry, else the default one."""
    rates = {**DEFAULTS["THROTTLE_RATES"], **(webhook_settings.THROTTLE_RATES or {})}
    return rates.get(scope)


def view_scope(request: Request, view: Any) -> str | None:
    """The throttle scope of this request: the view's `throttle_scopes[action]` (a viewset) or
    its `throttle_scope`."""
    scopes = getattr(view, "throttle_scopes", None)
    if scopes is not None:
        return scopes.get(getattr(view, "action", None))
    return getattr(view, "throttle_scope", None)


class _ScopedThrottle(SimpleRateThrottle):
    """A DRF throttle whose scope comes from the view and whose rate from WEBHOOKS."""

    kind = ""

    def __init__(self) -> None:
        # The scope is the view's, known in allow_request() only; DRF's __init__ would look
        # the rate up now, in its own THROTTLE_RATES.
        self.history: list[float] = []

    def get_rate(self) -> str | None:
        return rate_for(self.scope) if self.scope else None

    def allow_request(self, request: Request, view: Any) -> bool:
        scope = view_scope(request, view)
        if not scope:
            return True
        self.scope = scope
        self.rate = self.get_rate()
        if self.rate is None:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        # Outside the guard below: finding the tenant may read the body, and a malformed body
        # must answer its own 400, not pass as a cache failure.
        ident = self.ident_of(request, view)
        if ident is None:
            return True
        self.key = cache_key(f"webhooks-throttle:{self.scope}:{self.kind}", ident)
        try:
            allowed = super().allow_request(request, view)
        except Exception as exc:  # whatever the cache backend raises (Redis down...)
            logger.warning("throttle %s skipped, cache unavailable: %s", self.scope, exc)
            return True
        if allowed:  # DRF recorded `self.now` under `self.key`: what a refusal gives back
            spent = getattr(request, _SPENT_ATTRIBUTE, None)
            if spent is None:
                spent = []
                setattr(request, _SPENT_ATTRIBUTE, spent)
            spent.append((self.cache, self.key, self.now, self.duration))
        return allowed

    def ident_of(self, request: Request, view: Any) -> str | None:
        raise NotImplementedError

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        return self.key  # found in allow_request()


class UserThrottle(_ScopedThrottle):
    """The scope's budget for each user (anonymous requests: each client address, as
    `clientaddr.client_address` finds it)."""

    kind = "user"

    def ident_of(self, request: Request, view: Any) -> str | None:
        user = request.user
        if user and user.is_authenticated:
            return str(user.pk)
        return client_address(request)


class TenantThrottle(_ScopedThrottle):
    """The scope's budget for each tenant: the one the request acts on, from the view's
    `throttle_tenant(request)` if it has one, else the request's own (`resolve_tenant`)."""

    kind = "tenant"

    def ident_of(self, request: Request, view: Any) -> str | None:
        finder = getattr(view, "throttle_tenant", None)
        return finder(request) if finder is not None else resolve_tenant(request)


# --- Failed logins --------------------------------------------------------------------------

# What a failed attempt presented: a password (Basic, the admin's and any Django login form),
# or an API token. Each kind counts in its own per-address budget, so that others' wrong
# passwords from a shared address (an office, a NAT) never lock out a valid token.
PASSWORD = "password"
TOKEN = "token"


class FailedLogins:
    """Failed authentications within a sliding window (`WEBHOOKS["THROTTLE_RATES"]
    ["failed_login"]`, e.g. "10/minute"), counted per client address and kind of credential,
    and, for passwords only, per user name. Past the budget, every attempt of that kind from
    that address (or for that name) is refused, right or wrong, until the window has slid:
    guessing is bounded without locking an account for good.

    The address is `clientaddr.client_address` (`REMOTE_ADDR` unless `TRUSTED_PROXIES` says
    otherwise), never a header the client chose. `request` may be None (a login with no
    request): then only the user name counts.
    """

    def __init__(self, request: Any, username: str | None = None, kind: str = PASSWORD) -> None:
        rate = rate_for("failed_login")
        self.enabled = rate is not None
        self.limit, self.window = 0, 0
        if self.enabled:
            limit, window = UserThrottle().parse_rate(rate)
            self.limit, self.window = limit or 0, window or 0
        self.keys = []
        if request is not None:
            address = client_address(request)
            self.keys.append(cache_key(f"webhooks-failed-login:{kind}-addr", address))
        if username and kind == PASSWORD:
            self.keys.append(cache_key("webhooks-failed-login:user", username.lower()))

    def _recent(self, key: str, now: float) -> list[float]:
        return [t for t in default_cache.get(key, []) if t > now - self.window]

    def wait(self) -> float | None:
        """Seconds until the next attempt may be tried, None if one may be tried now."""
        if not self.enabled:
            return None
        now = time.time()
        try:
            for key in self.keys:
                recent = self._recent(key, now)
                if len(recent) >= self.limit:
                    return max(recent[0] + self.window - now, 0.0)
        except Exception as exc:  # whatever the cache backend raises (Redis down...)
            logger.warning("failed-login throttle skipped, cache unavailable: %s", exc)
        return None

    def check(self) -> None:
        """Raise Throttled (429, with the wait) if the budget is spent."""
        wait = self.wait()
        if wait is not None:
            raise exceptions.Throttled(wait=wait)

    def record(self) -> None:
        """Count one failure. A budget already spent is not extended by the attempts it
        refuses, so a blocked guesser cannot keep a name locked, and no list grows past the
        limit."""
        if not self.enabled:
            return
        now = time.time()
        try:
            for key in self.keys:
                recent = self._recent(key, now)
                if len(recent) < self.limit:
                    default_cache.set(key, [*recent, now], self.window)
        except Exception as exc:  # whatever the cache backend raises (Redis down...)
            logger.warning("failed login not counted, cache unavailable: %s", exc)
