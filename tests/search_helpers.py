"""Rows for the delivery-log search and bulk-retry tests: deliveries of chosen tenants, types,
statuses, answers, data and times."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from deliveries.models import Delivery, DeliveryStatus, Event
from subscriptions.models import Subscription, Tenant
from tests.factories import make_subscription

T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def endpoint(tenant: str, url: str = "http://127.0.0.1:9/hook", **fields: Any) -> Subscription:
    return make_subscription(url, tenant=tenant, **fields)


def logged(
    subscription: Subscription,
    type: str = "invoice.paid",
    status: str = DeliveryStatus.FAILED,
    *,
    code: int | None = 503,
    data: dict | None = None,
    minutes: float = 0,
) -> Delivery:
    """A delivery of a new event of `type` to `subscription`, created `minutes` after T0."""
    at = T0 + dt.timedelta(minutes=minutes)
    event = Event.objects.create(
        type=type,
        data=data if data is not None else {"amount": 10},
        tenant=Tenant.objects.for_key(subscription.tenant_id),
        created_at=at,
        fanned_out_at=at,
    )
    return Delivery.objects.create(
        event=event,
        subscription=subscription,
        status=status,
        attempts=1 if status != DeliveryStatus.PENDING else 0,
        last_status_code=code,
        created_at=at,
        next_attempt_at=timezone.now() if status in ("pending", "retrying") else None,
    )
