"""Bounds on failed logins, for the API and for every Django login form (the admin's).

- `BoundedBasicAuthentication`, `BoundedTokenAuthentication`: drop-in replacements for DRF's
  Basic and Token authentication: the same credentials, the same answers, except that past
  `WEBHOOKS["THROTTLE_RATES"]["failed_login"]` failures every attempt answers 429 until the
  window slides (`webhooks_core.throttling.FailedLogins`). The reference project uses them.
- `FailedLoginBackend`, first in `AUTHENTICATION_BACKENDS`: refuses a password login whose
  budget is spent, whatever asked (the admin's login form, DRF's Basic, a host's own form).
- `count_failed_login`: the receiver of Django's `user_login_failed` signal (its public hook
  for failed password logins), connected in `SubscriptionsConfig.ready()`: every failed
  password login counts, the admin's included.

Passwords count per client address and per user name; tokens per client address in a budget
of their own, so others' wrong passwords never refuse a valid token (shared/DESIGN.md,
"Security").
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from .throttling import PASSWORD, TOKEN, FailedLogins


def _basic_username(request: Request) -> str | None:
    auth = authentication.get_authorization_header(request).split()
    if len(auth) != 2 or auth[0].lower() != b"basic":
        return None
    try:
        decoded = base64.b64decode(auth[1]).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return None
    return decoded.partition(":")[0] or None


def _username(credentials: dict[str, Any], username: str | None = None) -> str | None:
    """The user name a login attempt named, whichever field the user model logs in with."""
    value = username or credentials.get(get_user_model().USERNAME_FIELD)
    return str(value) if value else None


class _Bounded:
    """Check the failed-login budget of this scheme's kind before authenticating."""

    kind = PASSWORD

    def authenticate(self, request: Request) -> Any:
        # A mixin before a DRF authentication class: that class has authenticate_header() and
        # authenticate(), which a mixin cannot declare to mypy without shadowing them.
        scheme = self.authenticate_header(request).split()[0].encode().lower()  # type: ignore[attr-defined]
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != scheme:
            return None  # not this scheme's credentials: nothing to bound
        username = _basic_username(request) if self.kind == PASSWORD else None
        failures = FailedLogins(request, username, self.kind)
        failures.check()
        try:
            return super().authenticate(request)  # type: ignore[misc]
        except exceptions.AuthenticationFailed:
            if self.kind == TOKEN:
                # A wrong password is counted by `count_failed_login`: Django's authenticate(),
                # which DRF's Basic calls, sends `user_login_failed`. Tokens have no signal.
                failures.record()
            raise


class BoundedBasicAuthentication(_Bounded, authentication.BasicAuthentication):
    """HTTP Basic, with failed attempts bounded per client address and per user name."""

    kind = PASSWORD


class BoundedTokenAuthentication(_Bounded, authentication.TokenAuthentication):
    """DRF tokens (`Authorization: Token ...`), with failed attempts bounded per address, apart
    from failed passwords."""

    kind = TOKEN


class FailedLoginBackend:
    """An authentication backend that authenticates nobody and refuses, with PermissionDenied
    (Django's public way to stop `authenticate()` at once), every password login from an
    address or for a user name whose failed-login budget is spent. Put it first in
    `AUTHENTICATION_BACKENDS`: the right password does not get in either until the window
    slides, so guessing through the admin's login form is bounded like the API's Basic.

    Deliberately not a `BaseBackend`: with no `get_user` or permission methods it is never the
    backend a session logs in with (the test client's `force_login` picks the first backend
    that has `get_user`) and is skipped by permission checks."""

    def authenticate(
        self,
        request: Any,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> None:
        if password is None:
            return None  # not a password login (a host's token or SSO backend)
        if FailedLogins(request, _username(kwargs, username), PASSWORD).wait() is not None:
            raise PermissionDenied("Too many failed logins; try again later.")
        return None


def count_failed_login(
    sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any
) -> None:
    """`user_login_failed` receiver: count a failed password login against its address and
    user name, wherever it came from (the admin, DRF's Basic, a host's login form)."""
    FailedLogins(request, _username(credentials), PASSWORD).record()
