"""DRF authentication with a bound on failed attempts (guessing passwords or tokens).

Drop-in replacements for DRF's Basic and Token authentication: the same credentials, the same
answers, except that past `WEBHOOKS["THROTTLE_RATES"]["failed_login"]` failures from one client
address (and, for Basic, for one user name) every attempt answers 429 until the window slides
(see `subscriptions.throttling.FailedLogins`). The reference project uses them.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from rest_framework import authentication, exceptions
from rest_framework.request import Request

from .throttling import FailedLogins


def _basic_username(request: Request) -> str | None:
    auth = authentication.get_authorization_header(request).split()
    if len(auth) != 2 or auth[0].lower() != b"basic":
        return None
    try:
        decoded = base64.b64decode(auth[1]).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return None
    return decoded.partition(":")[0] or None


class _Bounded:
    """Check the failed-login budget before authenticating; count a failure after one."""

    def authenticate(self, request: Request) -> Any:
        # A mixin before a DRF authentication class: that class has authenticate_header() and
        # authenticate(), which a mixin cannot declare to mypy without shadowing them.
        scheme = self.authenticate_header(request).split()[0].encode().lower()  # type: ignore[attr-defined]
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != scheme:
            return None  # not this scheme's credentials: nothing to bound
        failures = FailedLogins(request, _basic_username(request) if scheme == b"basic" else None)
        failures.check()
        try:
            return super().authenticate(request)  # type: ignore[misc]
        except exceptions.AuthenticationFailed:
            failures.record()
            raise


class BoundedBasicAuthentication(_Bounded, authentication.BasicAuthentication):
    """HTTP Basic, with failed attempts bounded per client address and per user name."""


class BoundedTokenAuthentication(_Bounded, authentication.TokenAuthentication):
    """DRF tokens (`Authorization: Token ...`), with failed attempts bounded per address."""
