"""Sending deliveries again: one delivery now (redelivery), or everything a subscription missed
in a time range (replay).

A redelivery is one more attempt on the same Delivery row, so the receiver sees the same
`webhook-id` and can deduplicate. The row is reopened through `states.reopen()` and one message
per delivery is enqueued for attempt `attempts + 1`: the claim only accepts the attempt that
follows the ones already made, so a stray older message cannot send twice. If the broker is
down the reopened rows are due now and the sweep sends them.

A replay counts the matching deliveries up front (the answer to "how many"), then a Celery task
pages through them by primary key and redelivers in batches, so the request never waits for it.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db.models import QuerySet
from django.utils import timezone

from subscriptions.models import Subscription
from webhooks_core.wire import to_wire

from .. import dispatch
from ..conf import webhook_settings
from ..dispatch import BROKER_ERRORS, enqueue_attempts
from ..models import Delivery
from . import ordering, states
from .incidents import (  # the tables, as this module's callers know them
    DEFAULT_REPLAY_STATUSES,
    INCIDENT_MARGIN,
    OUTAGE_STATUSES,
    REPLAYABLE_STATUSES,
)

logger = logging.getLogger(__name__)


class ReplayError(ValueError):
    """The redelivery or replay cannot be done; `field` names the offending input."""

    def __init__(self, message: str, *, field: str = "non_field_errors") -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class ReplayUnavailable(ReplayError):
    """The broker did not take the replay task: nothing was queued."""


@dataclass(frozen=True)
class ReplayRequest:
    subscription_id: uuid.UUID | str
    since: dt.datetime
    until: dt.datetime
    statuses: tuple[str, ...]

    def deliveries(self) -> QuerySet[Delivery]:
        return matching_deliveries(self.subscription_id, self.since, self.until, self.statuses)


@dataclass(frozen=True)
class ReplayResult:
    """`queued` deliveries matched when the replay task was queued at `queued_at`."""

    queued: int
    request: ReplayRequest
    queued_at: dt.datetime


def redeliver(delivery_ids: Iterable[int], now: dt.datetime | None = None) -> int:
    """Give each delivery one more attempt now; returns how many were reopened.

    Deliveries being sent right now are left alone (their attempt is under way), and so are
    deliveries of disabled subscriptions (the attempt would only discard them again).
    """
    return len(_redeliver(delivery_ids, now or timezone.now()))


def _redeliver(delivery_ids: Iterable[int], now: dt.datetime) -> list[tuple[int, int]]:
    """Reopen and enqueue; returns the (delivery id, attempt number) pairs that were queued
    (sent now, or held behind an earlier delivery of their ordering key)."""
    ids = list(
        Delivery.objects.filter(pk__in=list(delivery_ids), subscription__is_active=True)
        .values_list("pk", flat=True)
        .order_by()
    )
    if not ids:
        return []
    reopened = states.reopen(ids, now)
    if not reopened:
        return []
    # Keyed deliveries behind an unfinished earlier one of their key wait for it (held, sent
    # when their turn comes): a replay keeps the publish order.
    held = ordering.after_reopen(reopened)
    # Read the attempt count after reopening: the message must name the attempt that follows.
    items = [
        (pk, attempts + 1)
        for pk, attempts in Delivery.objects.filter(pk__in=reopened)
        .values_list("pk", "attempts")
        .order_by("pk")
    ]
    enqueue_attempts(item for item in items if item[0] not in held)
    ordering.recheck(held)
    return items


ALREADY_QUEUED = "An attempt of this delivery is already queued or being sent; wait for it."


def redeliver_one(delivery: Delivery) -> int:
    """Redeliver one delivery (a manual retry) and return the number of the attempt queued, or
    raise ReplayError saying why it cannot be sent again now (the API answers 409).

    Sends once however many retries arrive together: while an attempt is queued or under way
    (`states.reopen_one`), another retry is refused rather than queued behind it.
    """
    if not Subscription.objects.filter(pk=delivery.subscription_id, is_active=True).exists():
        raise ReplayError("The subscription is disabled; enable it first.")
    now = timezone.now()
    # Waits up to `max_countdown` ride a Celery message; longer ones are parked in the row.
    queued_until = now + dt.timedelta(seconds=webhook_settings.max_countdown)
    number = states.reopen_one(delivery.pk, now, queued_until)
    if number is None:
        raise ReplayError(ALREADY_QUEUED)
    held = ordering.after_reopen([delivery.pk])
    if delivery.pk not in held:
        enqueue_attempts([(delivery.pk, number)])
    # Behind an earlier unfinished delivery of its ordering key, it is sent once that one ends;
    # later ones of its key that were due now wait for it.
    ordering.recheck(held)
    return number


@dataclass(frozen=True)
class Missed:
    since: dt.datetime
    count: int


def missed_during_outage(
    subscription: Subscription,
    disabled_at: dt.datetime | None,
    failing_since: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> Missed | None:
    """What a just re-enabled subscription did not receive, as a replay range; None if nothing.

    The outage starts when its failing run began (or, without one, when it was disabled). The
    deliveries it left undelivered are those that *finished* undelivered since then, whenever
    they were created: events published while disabled (`skipped`), deliveries discarded by
    the disable, and those that failed in the run. The range starts at the creation of the
    oldest of them, so a replay by creation time covers them all.
    """
    if disabled_at is None:
        return None
    now = now or timezone.now()
    start = min(filter(None, (disabled_at, failing_since))) - INCIDENT_MARGIN
    since = (
        Delivery.objects.filter(
            subscription_id=subscription.pk, status__in=OUTAGE_STATUSES, updated_at__gte=start
        )
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    if since is None:
        return None
    count = matching_deliveries(subscription.pk, since, now, OUTAGE_STATUSES).count()
    return Missed(since, count)


def reenable_report(
    subscription: Subscription, disabled_at: dt.datetime | None, failing_since: dt.datetime | None
) -> dict[str, object]:
    """The keys an enabling `PATCH /api/subscriptions/{id}/` answers with (registered with
    `subscriptions.reenable` in `DeliveriesConfig.ready()`): `held_while_disabled`, how many
    deliveries the endpoint did not receive while it was failing or disabled, and `replay`, the
    body of the `POST .../replay/` that sends them (null when there is nothing to replay)."""
    missed = missed_during_outage(subscription, disabled_at, failing_since)
    if missed is None:
        return {"held_while_disabled": 0, "replay": None}
    return {
        "held_while_disabled": missed.count,
        "replay": {"since": to_wire(missed.since), "status": list(OUTAGE_STATUSES)},
    }


def matching_deliveries(
    subscription_id: uuid.UUID | str,
    since: dt.datetime,
    until: dt.datetime,
    statuses: Sequence[str],
) -> QuerySet[Delivery]:
    return Delivery.objects.filter(
        subscription_id=subscription_id,
        status__in=list(statuses),
        created_at__gte=since,
        created_at__lt=until,
    )


def build_request(
    subscription: Subscription,
    since: dt.datetime,
    until: dt.datetime | None = None,
    statuses: Iterable[str] | None = None,
    now: dt.datetime | None = None,
) -> ReplayRequest:
    """Validate a replay; `until` defaults to now, so later deliveries are not swept in."""
    now = now or timezone.now()
    until = until or now
    chosen = tuple(dict.fromkeys(statuses or DEFAULT_REPLAY_STATUSES))
    unknown = sorted(set(chosen) - set(REPLAYABLE_STATUSES))
    if unknown:
        raise ReplayError(
            f"Cannot replay {', '.join(unknown)}; choose from {', '.join(REPLAYABLE_STATUSES)}.",
            field="status",
        )
    if since.tzinfo is None or until.tzinfo is None:
        raise ReplayError("Give times with a time zone (e.g. 2026-01-01T10:00:00Z).", field="since")
    if since >= until:
        raise ReplayError("`since` must be before `until`.", field="since")
    if not subscription.is_active:
        raise ReplayError("The subscription is disabled; enable it first.")
    return ReplayRequest(subscription.pk, since, until, chosen)


def start_replay(
    subscription: Subscription,
    since: dt.datetime,
    until: dt.datetime | None = None,
    statuses: Iterable[str] | None = None,
) -> ReplayResult:
    """Count the matching deliveries and queue a task that redelivers them in batches."""
    request = build_request(subscription, since, until, statuses)
    queued_at = timezone.now()
    queued = request.deliveries().count()
    if queued:
        try:
            dispatch.send(
                dispatch.REPLAY_SUBSCRIPTION,
                (
                    str(request.subscription_id),
                    request.since.isoformat(),
                    request.until.isoformat(),
                    list(request.statuses),
                ),
                queue=webhook_settings.MAINTENANCE_QUEUE,
            )
        except BROKER_ERRORS as exc:
            raise ReplayUnavailable(f"The task queue is unavailable, nothing was queued: {exc}")
    return ReplayResult(queued, request, queued_at)


def not_yet_replayed(request: ReplayRequest, queued_at: dt.datetime) -> int:
    """How many deliveries of a replay queued at `queued_at` its task has not reopened yet.

    The task runs later, in a worker: until it reaches a delivery, the row still matches the
    replay and was last written before the replay was queued (`states.reopen()` writes
    `updated_at`). 0 once every matching delivery was reopened (or changed otherwise).
    """
    return request.deliveries().filter(updated_at__lt=queued_at).count()


def run_replay(request: ReplayRequest, batch_size: int | None = None) -> int:
    """Redeliver every delivery matching `request`, a batch at a time; returns how many.

    Pages by primary key, so rows reopened by an earlier batch (now `retrying`) are not read
    again and rows finishing meanwhile cannot shift the pages.
    """
    batch = int(batch_size or webhook_settings.BATCH_SIZE)
    total, last = 0, 0
    while True:
        ids = list(
            request.deliveries()
            .filter(pk__gt=last)
            .order_by("pk")
            .values_list("pk", flat=True)[:batch]
        )
        if not ids:
            break
        total += redeliver(ids)
        last = ids[-1]
    logger.info(
        "replay subscription=%s since=%s until=%s statuses=%s redelivered=%d",
        request.subscription_id,
        request.since.isoformat(),
        request.until.isoformat(),
        ",".join(request.statuses),
        total,
        extra={"subscription_id": str(request.subscription_id), "redelivered": total},
    )
    return total
