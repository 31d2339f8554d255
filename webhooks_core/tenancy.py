"""Which tenant a request belongs to.

A host names its customer accounts with tenant keys and tells us how to find a request's one
with `WEBHOOKS["TENANT_RESOLVER"]`: a dotted path to `callable(request) -> str | None`. For an
organisation model that is one line, e.g.::

    def tenant_of(request):
        return f"org_{request.user.organisation_id}" if request.user.is_authenticated else None

The resolver only says which tenant a user belongs to. Acting across tenants is a separate
question, answered by Django model permissions (see `webhooks_core.access`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, cast

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from .conf import webhook_settings

TENANT_KEY_MAX_LENGTH = 255
# Letters, digits and `. _ : -`: safe in URLs, Redis keys, logs and file names unquoted.
# "." and ".." are refused: a URL path segment of one or two dots is resolved away by clients
# and servers (RFC 3986 §5.2.4), so such a tenant could never be addressed in /api/tenants/{key}/.
# Keys are case-sensitive ("Org_1" and "org_1" are two tenants).
TENANT_KEY_RE = re.compile(r"^(?!\.{1,2}\Z)[A-Za-z0-9._:-]{1,255}\Z")


def is_valid_tenant_key(key: object) -> bool:
    """Whether `key` is a string of 1-255 characters of `[A-Za-z0-9._:-]`, not "." or ".."."""
    return isinstance(key, str) and bool(TENANT_KEY_RE.fullmatch(key))


def default_tenant_key() -> str:
    """The key of the default tenant (`WEBHOOKS["DEFAULT_TENANT"]`)."""
    return str(webhook_settings.DEFAULT_TENANT)


# Name prefix of the Django groups that the default resolver reads: a user in the group
# "tenant:org_42" belongs to tenant "org_42".
TENANT_GROUP_PREFIX = "tenant:"

# Where a resolved tenant is kept on the request (resolved once per request).
_CACHE_ATTRIBUTE = "_webhooks_tenant"
_UNRESOLVED = object()


def tenant_from_groups(request: Any) -> str | None:
    """The reference project's resolver: tenants as Django groups, managed in the admin.

    - anonymous: None (no tenant);
    - a user in exactly one group named "tenant:<key>": that key;
    - a user in several such groups: None (ambiguous, so no tenant rather than a guess);
    - any other user: None. Logging in grants nothing (closed by default): a user who is in no
      tenant reaches only what their model permissions grant, e.g. the "Webhooks operators"
      group that single-tenant projects give their operators (docs/tenants.md).

    Hosts with an organisation model replace it (docs/tenants.md).
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    names = list(
        user.groups.filter(name__startswith=TENANT_GROUP_PREFIX).values_list("name", flat=True)[:2]
    )
    if len(names) > 1:
        return None
    if names:
        return names[0][len(TENANT_GROUP_PREFIX) :]
    return None


def tenant_resolver() -> Callable[[Any], str | None]:
    """The configured resolver. Raises ImproperlyConfigured naming TENANT_RESOLVER if the
    dotted path does not import or is not callable."""
    path = webhook_settings.TENANT_RESOLVER
    if callable(path):
        return path
    try:
        resolver = import_string(str(path))
    except ImportError as exc:
        raise ImproperlyConfigured(
            f'WEBHOOKS["TENANT_RESOLVER"] = {path!r} cannot be imported: {exc}'
        ) from exc
    if not callable(resolver):
        raise ImproperlyConfigured(f'WEBHOOKS["TENANT_RESOLVER"] = {path!r} is not callable.')
    return resolver


def resolve_tenant(request: Any) -> str | None:
    """The tenant key of `request` (an HttpRequest or a DRF Request), or None for none.

    Calls `WEBHOOKS["TENANT_RESOLVER"]` once per request and keeps the answer on it. Raises
    ImproperlyConfigured when the resolver returns something that is not None or a valid key
    (1-255 characters of `[A-Za-z0-9._:-]`): a host bug must not silently widen access.
    """
    cached = getattr(request, _CACHE_ATTRIBUTE, _UNRESOLVED)
    if cached is not _UNRESOLVED:
        return cast("str | None", cached)
    key = tenant_resolver()(request)
    if key is not None and not is_valid_tenant_key(key):
        raise ImproperlyConfigured(
            f'WEBHOOKS["TENANT_RESOLVER"] returned {key!r}: a tenant key is None or 1-255 '
            "characters of letters, digits, '.', '_', ':' and '-'."
        )
    setattr(request, _CACHE_ATTRIBUTE, key)
    return key


def user_belongs_to(user: Any, tenant: str) -> bool:
    """Whether `user` belongs to `tenant` now, outside any request (e.g. to write to an
    endpoint's owner about it).

    True for an active user whom `TENANT_RESOLVER`, given a request of that user, maps to
    `tenant`; and, in the default tenant, for an active user holding the permission to change
    subscriptions (a single-tenant project's operators, who are in no tenant). A user who left
    the tenant, or an operator who made an endpoint for another tenant, does not belong.
    """
    from django.http import HttpRequest

    if user is None or not user.is_active:
        return False
    request = HttpRequest()
    request.user = user
    if resolve_tenant(request) == tenant:
        return True
    return tenant == default_tenant_key() and user.has_perm(
        "webhook_subscriptions.change_subscription"
    )
