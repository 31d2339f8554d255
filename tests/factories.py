"""Small factories for test rows."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from deliveries.models import Delivery, Event
from subscriptions.models import Subscription, Tenant
from webhooks_core.tenancy import TENANT_GROUP_PREFIX


def make_subscription(
    url: str, event_types: list[str] | None = None, *, tenant: str | None = None, **fields: Any
) -> Subscription:
    """A subscription (filters default to "*"), in `tenant` (a key) or the default tenant."""
    if tenant is not None:
        fields["tenant"] = Tenant.objects.for_key(tenant)
    return Subscription.objects.create(url=url, event_types=event_types or ["*"], **fields)


def make_delivery_to(url: str, **fields: Any) -> Delivery:
    """A delivery of a fresh, fanned-out event to a new subscription on `url` (`fields` go to
    the subscription), due now."""
    subscription = make_subscription(url, **fields)
    event = Event.objects.create(type="order.created", data={"n": 1}, fanned_out_at=timezone.now())
    return Delivery.objects.create(
        event=event, subscription=subscription, next_attempt_at=timezone.now()
    )


def make_tenant_user(username: str, tenant: str, **fields: Any) -> Any:
    """A user of `tenant` for the reference resolver: a member of the group "tenant:<key>"."""
    user = get_user_model().objects.create_user(username, **fields)
    group, _ = Group.objects.get_or_create(name=f"{TENANT_GROUP_PREFIX}{tenant}")
    user.groups.add(group)
    return user


def make_user(username: str, *codenames: str, tenant: str | None = None, **fields: Any) -> Any:
    """A user holding the model permissions `codenames` (e.g. "add_event"), in `tenant` if
    given; loaded afresh so that its permission cache is empty."""
    from django.contrib.auth.models import Permission

    user = (
        make_tenant_user(username, tenant, **fields)
        if tenant
        else get_user_model().objects.create_user(username, **fields)
    )
    if codenames:
        user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return get_user_model().objects.get(pk=user.pk)


def api_client(user: Any) -> Any:
    """A DRF test client authenticated as `user`."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(user)
    return client
