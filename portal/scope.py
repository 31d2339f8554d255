"""The one place that says which rows belong to a tenant. Every portal view reads through these
functions, so no page can reach another tenant's subscription, event or delivery: a lookup by
id outside them is a 404."""

from __future__ import annotations

from django.db.models import QuerySet

from deliveries.models import Delivery, DeliveryAttempt, Event
from subscriptions.models import Subscription


def subscriptions(tenant: str) -> QuerySet[Subscription]:
    """The tenant's endpoints, newest first."""
    return Subscription.objects.filter(owner__username=tenant).order_by("-created_at")


def deliveries(tenant: str) -> QuerySet[Delivery]:
    """Deliveries to the tenant's endpoints, newest first."""
    return Delivery.objects.filter(subscription__in=subscriptions(tenant)).order_by("-created_at")


def events(tenant: str) -> QuerySet[Event]:
    """Events published for the tenant, newest first."""
    return Event.objects.filter(deliveries__subscription__in=subscriptions(tenant)).distinct()


def attempts(tenant: str) -> QuerySet[DeliveryAttempt]:
    return DeliveryAttempt.objects.filter(delivery__in=deliveries(tenant))


def ownership(tenant: str) -> dict[str, object]:
    """The fields that put a new subscription in the tenant."""
    from django.contrib.auth import get_user_model

    owner, _ = get_user_model().objects.get_or_create(username=tenant)
    return {"owner": owner}
