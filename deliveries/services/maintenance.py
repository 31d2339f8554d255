"""Periodic upkeep: disabling dead endpoints and pruning old history, in batches."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.utils import timezone

from subscriptions.models import Subscription
from subscriptions.services import disable_subscription

from ..conf import webhook_settings
from ..models import FINISHED, Delivery, DeliveryAttempt, Event
from . import ordering


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


@dataclass
class Pruned:
    """What one `prune()` run deleted, and whether it got to the end (`done`) or stopped at
    its time budget with more old history left (the task then runs again at once)."""

    deliveries: int = 0
    attempts: int = 0
    events: int = 0
    endpoints: int = 0  # rows of deleted endpoints removed with their last delivery
    done: bool = True


def prune(
    now: dt.datetime | None = None,
    *,
    batch_size: int | None = None,
    budget: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Pruned:
    """Delete finished deliveries (with their attempts) and then orphaned events older than
    `RETENTION_DAYS`, batch after batch, until none is left or `budget` seconds (default
    `PRUNE_TIME_BUDGET`) are spent. Every batch is its own short statements (no long lock)
    and at least one batch runs whatever the budget.

    A time budget, not a count of batches: whatever the daily volume, a run removes as much
    as the database can in that time, and `done=False` makes the task send itself again at
    once (deliveries/tasks.py), so pruning keeps up as long as the database deletes faster
    than deliveries are created (docs/operations.md, "Sizing", gives the measured rate).

    Each batch deletes its attempts once: `QuerySet.delete()` removes a batch's attempts in
    one `DELETE ... WHERE delivery_id IN (...)` (Django's fast delete: attempts have no
    dependents or delete signals), then the deliveries.
    """
    now = now or timezone.now()
    cutoff = now - dt.timedelta(days=float(webhook_settings.RETENTION_DAYS))
    size = batch_size or int(webhook_settings.BATCH_SIZE)
    seconds = float(webhook_settings.PRUNE_TIME_BUDGET if budget is None else budget)
    deadline = clock() + seconds
    result = Pruned()
    old_deliveries = Delivery.objects.filter(status__in=FINISHED, created_at__lt=cutoff)
    old_events = Event.objects.filter(
        created_at__lt=cutoff, deliveries__isnull=True, fanned_out_at__isnull=False
    )
    for queryset, model in ((old_deliveries, Delivery), (old_events, Event)):
        while True:
            ids = list(queryset.order_by().values_list("pk", flat=True)[:size])
            if not ids:
                break
            _total, per_model = model.objects.filter(pk__in=ids).delete()
            result.deliveries += per_model.get(Delivery._meta.label, 0)
            result.attempts += per_model.get(DeliveryAttempt._meta.label, 0)
            result.events += per_model.get(Event._meta.label, 0)
            if clock() >= deadline:
                result.done = False
                return result
    result.endpoints = purge_deleted_endpoints()
    ordering.prune_counters(size)  # counters of keys whose every event is gone
    return result


def purge_deleted_endpoints() -> int:
    """Remove the rows of deleted endpoints whose last delivery has been pruned (with their
    notices and test events); returns how many. Until then the row holds their history's
    tenant and URL (subscriptions.services.delete_subscription)."""
    gone = Subscription.all_objects.deleted().filter(deliveries__isnull=True)
    ids = list(gone.order_by().values_list("pk", flat=True)[: int(webhook_settings.BATCH_SIZE)])
    if not ids:
        return 0
    return Subscription.all_objects.filter(pk__in=ids).delete()[1].get(Subscription._meta.label, 0)
