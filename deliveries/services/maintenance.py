"""Periodic upkeep: disabling dead endpoints and pruning old history, in batches."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from subscriptions.models import Subscription
from subscriptions.services import disable_subscription

from ..conf import webhook_settings
from ..models import FINISHED, Delivery, DeliveryAttempt, Event


def disable_dead_endpoints(now: dt.datetime | None = None) -> int:
    """Disable subscriptions that have failed without a single success for `DISABLE_AFTER`."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(seconds=float(webhook_settings.DISABLE_AFTER))
    days = float(webhook_settings.DISABLE_AFTER) / 86400
    disabled = 0
    for subscription in Subscription.objects.active().filter(failing_since__lt=cutoff):
        reason = f"Every delivery failed for {days:g} days with no success."
        disabled += disable_subscription(subscription, reason)
    return disabled


def prune(
    now: dt.datetime | None = None, *, batch_size: int | None = None, max_batches: int = 100
) -> int:
    """Delete finished deliveries (with their attempts) and orphaned events older than
    `RETENTION_DAYS`. Each batch is its own short statement, so no long lock is held.
    Returns the number of deliveries deleted."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(days=float(webhook_settings.RETENTION_DAYS))
    size = batch_size or int(webhook_settings.BATCH_SIZE)
    deleted = 0
    for _ in range(max_batches):
        ids = list(
            Delivery.objects.filter(status__in=FINISHED, created_at__lt=cutoff)
            .order_by()
            .values_list("pk", flat=True)[:size]
        )
        if not ids:
            break
        DeliveryAttempt.objects.filter(delivery_id__in=ids).delete()
        deleted += Delivery.objects.filter(pk__in=ids).delete()[0]
    for _ in range(max_batches):
        event_ids = list(
            Event.objects.filter(
                created_at__lt=cutoff, deliveries__isnull=True, fanned_out_at__isnull=False
            )
            .order_by()
            .values_list("pk", flat=True)[:size]
        )
        if not event_ids:
            break
        Event.objects.filter(pk__in=event_ids).delete()
    purge_deleted_endpoints()
    return deleted


def purge_deleted_endpoints() -> int:
    """Remove the rows of deleted endpoints whose last delivery has been pruned (with their
    notices and test events); returns how many. Until then the row holds their history's
    tenant and URL (subscriptions.services.delete_subscription)."""
    gone = Subscription.all_objects.deleted().filter(deliveries__isnull=True)
    ids = list(gone.order_by().values_list("pk", flat=True)[: int(webhook_settings.BATCH_SIZE)])
    if not ids:
        return 0
    return Subscription.all_objects.filter(pk__in=ids).delete()[1].get(Subscription._meta.label, 0)
