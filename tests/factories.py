"""Small factories for test rows."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from subscriptions.models import Subscription, Tenant
from subscriptions.tenancy import TENANT_GROUP_PREFIX


def make_subscription(
    url: str, event_types: list[str] | None = None, *, tenant: str | None = None, **fields: Any
) -> Subscription:
    """A subscription (filters default to "*"), in `tenant` (a key) or the default tenant."""
    if tenant is not None:
        fields["tenant"] = Tenant.objects.for_key(tenant)
    return Subscription.objects.create(url=url, event_types=event_types or ["*"], **fields)


def make_tenant_user(username: str, tenant: str, **fields: Any) -> Any:
    """A user of `tenant` for the reference resolver: a member of the group "tenant:<key>"."""
    user = get_user_model().objects.create_user(username, **fields)
    group, _ = Group.objects.get_or_create(name=f"{TENANT_GROUP_PREFIX}{tenant}")
    user.groups.add(group)
    return user
