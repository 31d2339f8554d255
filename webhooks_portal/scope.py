"""The one place that says which rows belong to a tenant. Every portal view reads through these
functions, so no page can reach another tenant's subscription, event or delivery: a lookup by
id outside them is a 404."""

from __future__ import annotations

from django.db.models import QuerySet

from deliveries.models import Delivery, DeliveryAttempt, Event
from subscriptions.models import Subscription, Tenant


def subscriptions(tenant: str) -> QuerySet[Subscription]:
    """The tenant's endpoints, newest first."""
    return Subscription.objects.for_tenant(tenant).order_by("-created_at")


def deliveries(tenant: str) -> QuerySet[Delivery]:
    """Deliveries to the tenant's endpoints, newest first."""
    return Delivery.objects.for_tenant(tenant).order_by("-created_at")


def events(tenant: str) -> QuerySet[Event]:
    """Events the tenant's endpoints may receive: its own and broadcasts, newest first."""
    return Event.objects.for_tenant(tenant).order_by("-created_at")


def attempts(tenant: str) -> QuerySet[DeliveryAttempt]:
    return DeliveryAttempt.objects.filter(delivery__subscription__tenant_id=tenant)


def display_name(tenant: str) -> str:
    """The tenant's name as the host set it, else its key."""
    name = Tenant.objects.filter(pk=tenant).values_list("name", flat=True).first()
    return name or tenant
