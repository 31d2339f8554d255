"""Rows for the operations tests: events, deliveries and attempts written directly."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from deliveries.models import Delivery, DeliveryAttempt, DeliveryStatus, Event
from subscriptions.models import Subscription


def make_delivery(
    subscription: Subscription,
    status: str = DeliveryStatus.FAILED,
    *,
    created_at: dt.datetime | None = None,
    attempts: list[tuple[int | None, int]] | None = None,
    event_type: str = "order.created",
    data: dict[str, Any] | None = None,
    **fields: Any,
) -> Delivery:
    """A delivery with `attempts` given as (response status or None, duration ms)."""
    created_at = created_at or timezone.now()
    event = Event.objects.create(
        tenant_id=subscription.tenant_id,
        type=event_type,
        data=data or {"n": 1},
        created_at=created_at,
        fanned_out_at=created_at,
    )
    delivery = Delivery.objects.create(
        event=event,
        subscription=subscription,
        status=status,
        attempts=len(attempts or []),
        created_at=created_at,
        **fields,
    )
    for number, (code, duration) in enumerate(attempts or [], start=1):
        DeliveryAttempt.objects.create(
            delivery=delivery,
            number=number,
            started_at=created_at + dt.timedelta(seconds=number),
            duration_ms=duration,
            request_headers={"webhook-id": str(event.id), "authorization": "[redacted]"},
            response_status=code,
            response_body="nope" if code and code >= 300 else "",
            error_kind="" if code else "connection",
        )
    return delivery


def notices_of(sub: Subscription) -> list[tuple[str, dt.datetime]]:
    """The subscription's endpoint notices, oldest first, as (kind, incident start)."""
    from deliveries.models import EndpointNotice

    rows = EndpointNotice.objects.filter(subscription=sub).order_by("pk")
    return list(rows.values_list("kind", "incident_started_at"))


def roll_up() -> None:
    """Count every stored attempt into the hourly health buckets, as the beat's roll-up task
    does once attempts have settled (`STALE_SENDING_AFTER` after they started): the health
    figures read those buckets, not the attempts."""
    from deliveries.conf import webhook_settings
    from deliveries.services import rollups

    # make_delivery starts attempts a few seconds after the delivery: a minute covers them.
    later = timezone.now() + dt.timedelta(seconds=webhook_settings.stale_sending_after + 60)
    assert rollups.roll_up(now=later).done


def queue_length(name: str) -> int:
    """Messages waiting in the broker's Redis list `name`."""
    from webhooks_project.celery import app

    with app.connection_for_read() as conn:
        return conn.default_channel.client.llen(name)
