"""Every change of a delivery's status, each a guarded conditional UPDATE.

A transition only happens if the row is still in the state the caller saw (status and attempt
number), so two workers holding the same message, or a worker and the sweep, cannot both win:
the loser's UPDATE matches no row and it stops. Works the same on SQLite and PostgreSQL.

    pending ──claim──▶ sending ──▶ succeeded
    retrying ─claim─▶ sending ──▶ retrying (next_attempt_at) | failed
    pending | retrying ──defer──▶ same status, later next_attempt_at, wait_reason (at a cap)
    sending (stale) ──release_stale──▶ retrying | failed
    any unfinished ──▶ discarded
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable

from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from subscriptions.matching import filters_match

from ..models import (
    ERROR_MAX_CHARS,
    FINISHED,
    UNFINISHED,
    WAITING,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
)

# The claim, on PostgreSQL (every attempt runs it): the same statement the ORM's update() below
# builds, without compiling it each time (about 0.25 ms of CPU per delivery, docs/performance.md).
_CLAIM = """
UPDATE webhooks_delivery
SET status = %s, attempts = %s, claimed_at = %s, next_attempt_at = %s, updated_at = %s
WHERE id = %s AND status IN (%s, %s) AND attempts = %s
"""


def claim(delivery_id: int, number: int, now: dt.datetime, lease_until: dt.datetime) -> bool:
    """Take the delivery for attempt `number`; False if it is not waiting for exactly that."""
    if connection.vendor == "postgresql":
        params = [DeliveryStatus.SENDING, number, now, lease_until, now]
        with transaction.mark_for_rollback_on_error(), connection.cursor() as cursor:
            cursor.execute(_CLAIM, [*params, delivery_id, *WAITING, number - 1])
            return cursor.rowcount == 1
    return bool(
        Delivery.objects.filter(pk=delivery_id, status__in=WAITING, attempts=number - 1).update(
            status=DeliveryStatus.SENDING,
            attempts=number,
            claimed_at=now,
            next_attempt_at=lease_until,
            updated_at=now,
        )
    )


def defer(delivery_id: int, number: int, until: dt.datetime | None, reason: str = "") -> bool:
    """Move the due time of a delivery still waiting for attempt `number` to `until` (None:
    leave it) because its endpoint or tenant is at its in-flight cap, recording why (`reason`,
    a `WaitReason`: shown until that attempt starts). No attempt number is consumed; False if
    it was claimed or finished meanwhile.
    """
    changes: dict[str, object] = {
        "updated_at": timezone.now(),
        "wait_reason": reason,
        "wait_attempt": number,
    }
    if until is not None:
        changes["next_attempt_at"] = until
    return bool(
        Delivery.objects.filter(pk=delivery_id, status__in=WAITING, attempts=number - 1).update(
            **changes
        )
    )


def _finishing(delivery_id: int, number: int) -> QuerySet[Delivery]:
    # The guard of every transition out of `sending`: still this attempt's.
    return Delivery.objects.filter(pk=delivery_id, status=DeliveryStatus.SENDING, attempts=number)


def finish(delivery_id: int, number: int, changes: dict[str, object]) -> bool:
    """End attempt `number` with `changes` (see `succeeded()` and its siblings); False if the
    delivery is no longer this attempt's."""
    changes.setdefault("updated_at", timezone.now())
    return bool(_finishing(delivery_id, number).update(**changes))


# The changes that end an attempt: the same five columns whatever the outcome, so that
# `finish_with_attempt` can be one literal statement. `delivered_at` is None except on success
# (a delivery being sent has none: `reopen` clears it).


def succeeded(status_code: int, now: dt.datetime) -> dict[str, object]:
    return _after_attempt(DeliveryStatus.SUCCEEDED, None, status_code, "", delivered_at=now)


def _after_attempt(
    status: str,
    due: dt.datetime | None,
    status_code: int | None,
    error: str,
    *,
    delivered_at: dt.datetime | None = None,
) -> dict[str, object]:
    return {
        "status": status,
        "next_attempt_at": due,
        "last_status_code": status_code,
        "last_error": error[:ERROR_MAX_CHARS],
        "delivered_at": delivered_at,
    }


def retrying(due: dt.datetime, status_code: int | None, error: str) -> dict[str, object]:
    return _after_attempt(DeliveryStatus.RETRYING, due, status_code, error)


def failed(status_code: int | None, error: str) -> dict[str, object]:
    return _after_attempt(DeliveryStatus.FAILED, None, status_code, error)


def discarded(status_code: int | None, reason: str) -> dict[str, object]:
    return _after_attempt(DeliveryStatus.DISCARDED, None, status_code, reason)


def finish_with_attempt(
    attempt: DeliveryAttempt, number: int, changes: dict[str, object]
) -> tuple[DeliveryAttempt, bool]:
    """Store the attempt row and end attempt `number` with `changes` (built by `succeeded()`,
    `retrying()`, `failed()` or `discarded()`), both or neither. True if the delivery was still
    this attempt's (the attempt row is stored either way: the request was sent).

    Raises IntegrityError, with nothing stored, if attempt `number` was already recorded (the
    sweep took it for lost). On PostgreSQL this is one statement (`_INSERT_THEN_FINISH`), so
    one round trip and no BEGIN/COMMIT; elsewhere the ORM's INSERT and UPDATE in a transaction.
    """
    now = changes.setdefault("updated_at", timezone.now())
    if connection.vendor == "postgresql":
        return _insert_then_finish(attempt, number, changes, now)
    with transaction.atomic():
        attempt.save(force_insert=True)
        return attempt, bool(_finishing(attempt.delivery_id, number).update(**changes))


# The attempt INSERT rides in a WITH clause of the delivery's guarded UPDATE: PostgreSQL runs
# both or neither in one round trip, in autocommit, where a transaction would add BEGIN and
# COMMIT round trips to every delivery (measured in docs/performance.md). The UPDATE's RETURNING
# gives the new attempt id only when the guard matched; when it did not (the sweep moved the
# delivery on), the attempt row is stored all the same. tests/test_states.py checks that the
# column list is DeliveryAttempt's and that this stores what the ORM reads back.
_INSERT_THEN_FINISH = """
WITH inserted AS (
    INSERT INTO webhooks_delivery_attempt (
        delivery_id, number, started_at, duration_ms, request_headers, response_status,
        response_headers, response_body, error_kind, error, task_id
    ) VALUES (%s, %s, %s, %s, %s::jsonb, %s, %s::jsonb, %s, %s, %s, %s)
    RETURNING id
)
UPDATE webhooks_delivery
SET status = %s, next_attempt_at = %s, last_status_code = %s, last_error = %s,
    delivered_at = %s, updated_at = %s
WHERE id = %s AND status = %s AND attempts = %s
RETURNING (SELECT id FROM inserted)
"""


def _insert_then_finish(
    attempt: DeliveryAttempt, number: int, changes: dict[str, object], now: dt.datetime
) -> tuple[DeliveryAttempt, bool]:
    params = [
        attempt.delivery_id,
        attempt.number,
        attempt.started_at,
        attempt.duration_ms,
        json.dumps(attempt.request_headers),
        attempt.response_status,
        json.dumps(attempt.response_headers),
        attempt.response_body,
        attempt.error_kind,
        attempt.error,
        attempt.task_id,
        changes["status"],
        changes["next_attempt_at"],
        changes["last_status_code"],
        changes["last_error"],
        changes["delivered_at"],
        now,
        attempt.delivery_id,
        DeliveryStatus.SENDING,
        number,
    ]
    with transaction.mark_for_rollback_on_error(), connection.cursor() as cursor:
        cursor.execute(_INSERT_THEN_FINISH, params)
        row = cursor.fetchone()
    if row is not None:
        attempt.pk = row[0]
        attempt._state.adding = False
    return attempt, row is not None


def mark_discarded(delivery_id: int, number: int, status_code: int | None, reason: str) -> bool:
    return finish(delivery_id, number, discarded(status_code, reason))


def discard_waiting(subscription_id: object, reason: str) -> int:
    """Discard the deliveries of a subscription that wait for an attempt.

    Deliveries being sent right now finish their attempt; their own outcome then applies.
    """
    return Delivery.objects.filter(subscription_id=subscription_id, status__in=WAITING).update(
        status=DeliveryStatus.DISCARDED,
        next_attempt_at=None,
        last_error=reason[:ERROR_MAX_CHARS],
        updated_at=timezone.now(),
    )


def disabled_reason(reason: str) -> str:
    """The recorded error of a delivery discarded because its subscription was disabled."""
    return f"Discarded: {reason}"[:ERROR_MAX_CHARS]


def discard_for_disable(subscription_id: object, reason: str, since: dt.datetime) -> int:
    """Discard what still waits for a subscription disabled with `reason` at or after `since`,
    and return how many deliveries that disabling discarded, whoever ran it first (the
    `subscription_disabled` receiver after commit, or this call). Idempotent."""
    recorded = disabled_reason(reason)
    discard_waiting(subscription_id, recorded)
    return Delivery.objects.filter(
        subscription_id=subscription_id,
        status=DeliveryStatus.DISCARDED,
        last_error=recorded,
        updated_at__gte=since,
    ).count()


def unselected_reason(event_type: str) -> str:
    """The recorded reason of a delivery discarded because its subscription's filters changed."""
    return f"Subscription no longer selects {event_type!r}."


def discard_unselected(subscription_id: object, filters: Iterable[str]) -> int:
    """Discard the deliveries of a subscription that wait for an attempt and whose event type
    `filters` no longer select (test events, sent whatever the filters, stay). One query for
    the waiting types, one UPDATE per type dropped; returns the number discarded."""
    waiting = Delivery.objects.filter(
        subscription_id=subscription_id,
        status__in=WAITING,
        event__target_subscription__isnull=True,
    )
    types = set(waiting.values_list("event__type", flat=True).distinct().order_by())
    filters = list(filters)
    discarded = 0
    for event_type in sorted(t for t in types if not filters_match(filters, t)):
        discarded += waiting.filter(event__type=event_type).update(
            status=DeliveryStatus.DISCARDED,
            next_attempt_at=None,
            last_error=unselected_reason(event_type)[:ERROR_MAX_CHARS],
            updated_at=timezone.now(),
        )
    return discarded


def release_stale(delivery_id: int, number: int, claimed_at: dt.datetime, due: dt.datetime) -> bool:
    """Give a delivery whose worker vanished mid-attempt back to the queue."""
    return bool(
        Delivery.objects.filter(
            pk=delivery_id, status=DeliveryStatus.SENDING, attempts=number, claimed_at=claimed_at
        ).update(
            status=DeliveryStatus.RETRYING,
            next_attempt_at=due,
            last_error="Worker lost during the attempt.",
            updated_at=timezone.now(),
        )
    )


def fail_stale(delivery_id: int, number: int, claimed_at: dt.datetime) -> bool:
    return bool(
        Delivery.objects.filter(
            pk=delivery_id, status=DeliveryStatus.SENDING, attempts=number, claimed_at=claimed_at
        ).update(
            status=DeliveryStatus.FAILED,
            next_attempt_at=None,
            last_error="Worker lost during the last attempt of the schedule.",
            updated_at=timezone.now(),
        )
    )


def postpone(delivery_ids: Iterable[int], until: dt.datetime) -> int:
    """Push waiting deliveries' due time forward (the sweep leases what it re-enqueues)."""
    return Delivery.objects.filter(pk__in=list(delivery_ids), status__in=WAITING).update(
        next_attempt_at=until
    )


def reopen(delivery_ids: Iterable[int], now: dt.datetime) -> list[int]:
    """Make finished or waiting deliveries due again for one more attempt (redelivery, replay).

    Returns the ids that were reopened; deliveries being sent right now are left alone.
    """
    ids = list(delivery_ids)
    Delivery.objects.filter(pk__in=ids).exclude(status=DeliveryStatus.SENDING).update(
        status=DeliveryStatus.RETRYING,
        next_attempt_at=now,
        delivered_at=None,
        updated_at=now,
    )
    return list(
        Delivery.objects.filter(pk__in=ids, status=DeliveryStatus.RETRYING, next_attempt_at=now)
        .values_list("pk", flat=True)
        .order_by()
    )


def reopen_one(delivery_id: int, now: dt.datetime, queued_until: dt.datetime) -> int | None:
    """Make one delivery due now for a manual retry, unless an attempt of it is already queued
    or under way; returns the number of the attempt to send, or None.

    Queued or under way: `sending`, `pending` (its first message is on its way), or `retrying`
    due before `queued_until` (its retry message is in the broker). A `retrying` delivery
    parked for later, or a finished one, is reopened. One guarded UPDATE: of concurrent retries
    of the same delivery exactly one wins, and later ones find it due now, hence queued.
    """
    reopenable = Q(status__in=FINISHED) | Q(
        status=DeliveryStatus.RETRYING, next_attempt_at__gt=queued_until
    )
    changed = Delivery.objects.filter(reopenable, pk=delivery_id).update(
        status=DeliveryStatus.RETRYING, next_attempt_at=now, delivered_at=None, updated_at=now
    )
    if not changed:
        return None
    attempts = Delivery.objects.filter(pk=delivery_id).values_list("attempts", flat=True).first()
    return None if attempts is None else attempts + 1


__all__ = [
    "UNFINISHED",
    "claim",
    "defer",
    "disabled_reason",
    "discard_for_disable",
    "discard_unselected",
    "discard_waiting",
    "discarded",
    "fail_stale",
    "failed",
    "finish",
    "finish_with_attempt",
    "mark_discarded",
    "postpone",
    "release_stale",
    "reopen",
    "reopen_one",
    "retrying",
    "succeeded",
    "unselected_reason",
]
