"""Ordered delivery per key: events published with the same `ordering_key` reach each
subscription in publish order, the next once the previous one has ended.

The database holds the order (docs/guarantees.md, "Ordering"):

- **Publish order.** A keyed event takes the next `ordering_seq` of its tenant's key from an
  `OrderingCounter` row, incremented inside the publishing transaction (`next_seq`). A second
  publish of the key waits on that row until the first commits or rolls back, so sequence order
  is commit order: when an event is visible, every earlier event of its key is too.
- **Fan-out in order.** A keyed event's fan-out first fans out the earlier events of its key
  that are still waiting for theirs (`fan_out_earlier`), so a delivery never exists before the
  deliveries of the events published before it. Each delivery copies the key and the sequence.
- **Held, not due.** A delivery is the *head* of its (subscription, key) when no unfinished
  delivery of that pair has a smaller sequence. A delivery that is not the head is created (or
  put back) *held*: waiting, with no `next_attempt_at` (the sweep's due scan never sees it) and
  `wait_reason = "ordering"` (the API, the admin and the portal show why).
- **The claim refuses a non-head** in its own guarded UPDATE (`claim_guard_sql`): two workers
  holding two messages of one key cannot send them out of order, whatever the broker does.
- **The next one goes at once.** When a head ends (succeeded, failed for good, discarded), the
  worker that ended it releases the next one right after its commit (`advance`): one guarded
  UPDATE makes it due, and its message is sent. Whoever writes a hold re-checks the head after
  its own commit (`advance` again), so a head that ended meanwhile cannot strand a held one;
  the sweep releases anything left held behind a finished head anyway (`sweep`).

Deliveries without a key take none of these steps: no extra statement on their path (the claim
guard is one `IS NULL` test in the claim's own WHERE).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, F, Field, Max, Min, OuterRef, Q, QuerySet
from django.db.models.functions import Now

from .. import tracing
from ..dispatch import enqueue_attempts
from ..models import (
    ERROR_MAX_CHARS,
    ORDERING_KEY_MAX_LENGTH,
    UNFINISHED,
    WAITING,
    Delivery,
    DeliveryStatus,
    Event,
    OrderingCounter,
    WaitReason,
)
from .connections import working_alias

logger = logging.getLogger(__name__)


def ordering_key_problem(key: object) -> str | None:
    """Why `key` cannot be an ordering key, or None if it can: 1 to 255 printable characters
    without surrounding spaces (the rule of idempotency keys: stored and compared exactly)."""
    if not isinstance(key, str) or not key:
        return "An ordering key is a non-empty string."
    if len(key) > ORDERING_KEY_MAX_LENGTH:
        return f"An ordering key is at most {ORDERING_KEY_MAX_LENGTH} characters."
    if not key.isprintable() or key != key.strip():
        return "An ordering key is printable text without control characters or surrounding spaces."
    return None


# --- Publish order --------------------------------------------------------------------------------


def next_seq(tenant_id: Any, key: str, alias: str) -> int:
    """The next sequence number of tenant `tenant_id`'s ordering `key` (1 for a new key).

    Must run inside the transaction that stores the event: the counter's row stays locked until
    that transaction ends, so concurrent publishes of one key are numbered in commit order.
    """
    counters = OrderingCounter.objects.using(alias).filter(tenant_id=tenant_id, key=key)
    with transaction.atomic(using=alias):
        if not counters.update(last_seq=F("last_seq") + 1):
            # A new counter (or one pruned with `prune_counters`) starts after the key's
            # events still stored, so a pruned counter never numbers a new event before them.
            stored = Event.objects.using(alias).filter(tenant_id=tenant_id, ordering_key=key)
            first = (stored.aggregate(last=Max("ordering_seq"))["last"] or 0) + 1
            try:
                with transaction.atomic(using=alias):
                    OrderingCounter.objects.using(alias).create(
                        tenant_id=tenant_id, key=key, last_seq=first
                    )
                return first
            except IntegrityError:
                # Another publish created the row first (and holds it until it commits).
                counters.update(last_seq=F("last_seq") + 1)
        return int(counters.values_list("last_seq", flat=True).get())


def has_earlier_unfanned(event: Event) -> bool:
    """Whether an event of `event`'s key published before it still waits for its fan-out."""
    return _earlier_unfanned(event).exists()


def _earlier_unfanned(event: Event) -> QuerySet[Event]:
    return Event.objects.using(working_alias()).filter(
        tenant_id=event.tenant_id,
        ordering_key=event.ordering_key,
        ordering_seq__lt=event.ordering_seq,
        fanned_out_at__isnull=True,
    )


def prune_counters(batch: int = 1000) -> int:
    """Delete up to `batch` counters of keys none of whose events are stored any more (pruned
    by retention); returns how many. Safe at any time: a counter made again starts after the
    key's stored events (`next_seq`)."""
    alias = working_alias()
    events = Event.objects.using(alias).filter(
        tenant_id=OuterRef("tenant_id"), ordering_key=OuterRef("key")
    )
    counters = OrderingCounter.objects.using(alias)
    idle = list(counters.filter(~Exists(events)).values_list("pk", flat=True)[:batch])
    return counters.filter(pk__in=idle).filter(~Exists(events)).delete()[0] if idle else 0


def fan_out_earlier(event: Event, fan_out: Any) -> None:
    """Fan out, in publish order, the events of `event`'s key published before it whose own
    fan-out has not run yet (it is queued, or failed and waits for the sweep). `fan_out` is
    `publishing.fan_out` (passed in: publishing imports this module). Raises what it raises:
    the later event must not be fanned out before an earlier one."""
    earlier = _earlier_unfanned(event).order_by("ordering_seq").values_list("pk", flat=True)
    for pk in list(earlier):
        fan_out(pk, earlier_done=True)


def blocked_subscriptions(event: Event, subscription_ids: list[Any], alias: str) -> set[Any]:
    """Of `subscription_ids`, those with an unfinished delivery of an earlier event of `event`'s
    key: the new delivery is created held there."""
    if not subscription_ids:
        return set()
    return set(
        Delivery.objects.using(alias)
        .filter(
            subscription_id__in=subscription_ids,
            ordering_key=event.ordering_key,
            ordering_seq__lt=event.ordering_seq,
            status__in=UNFINISHED,
        )
        .values_list("subscription_id", flat=True)
        .distinct()
        .order_by()
    )


def held_fields() -> dict[str, object]:
    """The columns of a held delivery at its creation (first attempt)."""
    return {"next_attempt_at": None, "wait_reason": WaitReason.ORDERING, "wait_attempt": 1}


# --- The claim's guard ----------------------------------------------------------------------------


def claim_guard_sql(connection: Any, table: str) -> str:
    """A condition for the claim's WHERE (on the quoted `table`): the delivery has no key, or no
    unfinished delivery of its (subscription, key) comes before it. Literal statuses, no
    parameters: the claim's parameter list stays as it is."""
    quote = connection.ops.quote_name

    def col(name: str) -> str:
        field = Delivery._meta.get_field(name)
        assert isinstance(field, Field)
        return str(quote(field.column))

    statuses = ", ".join(f"'{s}'" for s in UNFINISHED)
    return (
        f"({table}.{col('ordering_key')} IS NULL OR NOT EXISTS ("
        f"SELECT 1 FROM {table} o WHERE o.{col('subscription')} = {table}.{col('subscription')} "
        f"AND o.{col('ordering_key')} = {table}.{col('ordering_key')} "
        f"AND o.{col('ordering_seq')} < {table}.{col('ordering_seq')} "
        f"AND o.{col('status')} IN ({statuses})))"
    )


# --- Heads, holds and releases --------------------------------------------------------------------


def _earlier_unfinished() -> Exists:
    return Exists(
        Delivery.objects.filter(
            subscription_id=OuterRef("subscription_id"),
            ordering_key=OuterRef("ordering_key"),
            ordering_seq__lt=OuterRef("ordering_seq"),
            status__in=UNFINISHED,
        )
    )


def _held() -> Q:
    return Q(status__in=WAITING, next_attempt_at__isnull=True, wait_reason=WaitReason.ORDERING)


def advance(subscription_id: Any, key: str | None) -> int:
    """Release the head of (`subscription_id`, `key`) if it is held: due now, its message sent
    after commit. Returns 1 if it released one, else 0. Called by whoever ended the previous
    head, and by whoever wrote a hold (the re-check that keeps the two from missing each other:
    each writes, commits, then looks). One guarded UPDATE: of concurrent callers one wins."""
    if key is None:
        return 0
    alias = working_alias()
    rows = Delivery.objects.using(alias)
    head = (
        rows.filter(subscription_id=subscription_id, ordering_key=key, status__in=UNFINISHED)
        .order_by("ordering_seq")
        .values_list("pk", flat=True)
        .first()
    )
    if head is None:
        return 0
    return len(_release(rows.filter(pk=head)))


def _release(candidates: QuerySet[Delivery]) -> list[tuple[int, int]]:
    """Make the held heads among `candidates` due now and enqueue them after commit; returns the
    (delivery id, attempt) pairs sent."""
    alias = working_alias()
    with transaction.atomic(using=alias):
        ids = list(candidates.filter(_held()).values_list("pk", flat=True).order_by())
        if not ids:
            return []
        rows = Delivery.objects.using(alias).filter(_held(), pk__in=ids)
        # Guarded in the UPDATE itself: a head only, whatever changed since the read above.
        rows.filter(~_earlier_unfinished()).update(
            next_attempt_at=Now(), wait_reason=WaitReason.NONE, updated_at=Now()
        )
        items = list(
            Delivery.objects.using(alias)
            .filter(pk__in=ids, status__in=WAITING, next_attempt_at__isnull=False)
            .exclude(wait_reason=WaitReason.ORDERING)
            .values_list("pk", "attempts")
        )
        items = [(pk, attempts + 1) for pk, attempts in items]
        if items:
            # Other events' deliveries: not in the trace of whatever ended the previous head
            # (their attempts join their own publish's trace, kept on the event).
            send = tracing.detached(lambda: enqueue_attempts(items))
            transaction.on_commit(send, using=alias)
    return items


def hold(delivery_ids: Iterable[int]) -> list[int]:
    """Put back on hold the keyed deliveries among `delivery_ids` that wait for an attempt but
    are not their key's head (reopened by a replay or a manual retry behind an earlier
    unfinished one); returns their ids. The caller sends messages for the others only, and
    calls `recheck` for the held ones after its commit."""
    ids = list(delivery_ids)
    if not ids:
        return []
    alias = working_alias()
    rows = Delivery.objects.using(alias).filter(
        pk__in=ids, ordering_key__isnull=False, status__in=WAITING
    )
    with transaction.atomic(using=alias):
        rows.filter(_earlier_unfinished()).update(
            next_attempt_at=None,
            wait_reason=WaitReason.ORDERING,
            wait_attempt=F("attempts") + 1,
            updated_at=Now(),
        )
        return list(rows.filter(_held()).values_list("pk", flat=True).order_by())


def after_reopen(delivery_ids: Iterable[int]) -> set[int]:
    """Keep the order after keyed deliveries were reopened (a manual retry, a replay, a bulk
    retry): hold those of `delivery_ids` behind an earlier unfinished delivery of their key, and
    the later deliveries of their keys that were due (their messages would be refused by the
    claim, and they would wait for the sweep instead of going right after the reopened one).
    Returns every id held; the caller sends no message for those, and calls `recheck` with them
    after its commit."""
    ids = list(delivery_ids)
    if not ids:
        return set()
    rows = Delivery.objects.using(working_alias())
    held = set(hold(ids))
    earlier_reopened = rows.filter(
        pk__in=ids,
        subscription_id=OuterRef("subscription_id"),
        ordering_key=OuterRef("ordering_key"),
        ordering_seq__lt=OuterRef("ordering_seq"),
    )
    behind = (
        rows.filter(ordering_key__isnull=False, status__in=WAITING, next_attempt_at__isnull=False)
        .filter(Exists(earlier_reopened))
        .exclude(pk__in=ids)
    )
    held.update(hold(behind.values_list("pk", flat=True)))
    return held


def recheck(delivery_ids: Iterable[int]) -> int:
    """After writing holds: release those whose key's head ended meanwhile. Returns how many."""
    ids = list(delivery_ids)
    if not ids:
        return 0
    return len(_release(Delivery.objects.using(working_alias()).filter(pk__in=ids)))


def release_subscription(subscription_id: Any) -> int:
    """Release the held heads of one subscription (after some of its waiting deliveries were
    discarded in bulk, e.g. its filters changed). Returns how many."""
    rows = Delivery.objects.using(working_alias()).filter(
        subscription_id=subscription_id, ordering_key__isnull=False
    )
    return len(_release(rows))


def ended(delivery: Delivery) -> int:
    """A keyed delivery ended (succeeded, failed, discarded): release the next of its key."""
    if delivery.ordering_key is None:
        return 0
    try:
        return advance(delivery.subscription_id, delivery.ordering_key)
    except Exception:
        # The delivery's end is recorded; the sweep releases the next one if this failed.
        logger.exception(
            "delivery %s: the next one of its ordering key was not released", delivery.pk
        )
        return 0


def sweep(batch: int) -> int:
    """The safety net, run by the sweep: hold keyed deliveries found due behind an unfinished
    earlier one (a message of theirs was refused by the claim), and release held heads whose
    previous delivery ended without releasing them (its worker died in between). Returns how
    many were released."""
    alias = working_alias()
    rows = Delivery.objects.using(alias).filter(ordering_key__isnull=False, status__in=WAITING)
    stray = list(
        rows.filter(next_attempt_at__isnull=False)
        .filter(_earlier_unfinished())
        .values_list("pk", flat=True)
        .order_by()[:batch]
    )
    hold(stray)
    heads = list(
        rows.filter(_held()).filter(~_earlier_unfinished()).values_list("pk", flat=True)[:batch]
    )
    return recheck(heads)


# --- Skipping a head, and what the admin and the portal show --------------------------------------


class SkipError(ValueError):
    """The delivery cannot be skipped (the API and the portal answer 409 with the message)."""


SKIPPED_REASON = "Skipped by {who} to release ordering key {key!r}."


def skip(delivery: Delivery, who: str) -> int:
    """Discard a waiting head for good, recording who did it, and release the next delivery of
    its key; returns how many were released (0 or 1).

    Raises SkipError for a delivery without a key, one being sent right now (its attempt ends
    first), or one already finished.
    """
    if delivery.ordering_key is None:
        raise SkipError("This delivery has no ordering key; nothing waits behind it.")
    alias = working_alias()
    reason = SKIPPED_REASON.format(who=who, key=delivery.ordering_key)[:ERROR_MAX_CHARS]
    changed = (
        Delivery.objects.using(alias)
        .filter(pk=delivery.pk, status__in=WAITING)
        .update(
            status=DeliveryStatus.DISCARDED,
            next_attempt_at=None,
            wait_reason=WaitReason.NONE,
            last_error=reason,
            updated_at=Now(),
        )
    )
    if not changed:
        raise SkipError("Only a delivery waiting for an attempt can be skipped.")
    logger.info(
        "ordering: delivery %s skipped by %s", delivery.pk, who, extra={"delivery_id": delivery.pk}
    )
    return advance(delivery.subscription_id, delivery.ordering_key)


@dataclass(frozen=True)
class BlockedKey:
    """A key of one subscription with deliveries held behind its head: `head` holds the key
    (its status, attempts and last error say why); `held` deliveries wait behind it, the oldest
    created at `held_since`."""

    subscription_id: Any
    key: str
    head: Delivery | None
    held: int
    held_since: Any


def blocked_keys(deliveries: QuerySet[Delivery], limit: int = 50) -> list[BlockedKey]:
    """The keys with held deliveries among `deliveries` (already scoped to what the viewer may
    see), longest held first, at most `limit`: two queries whatever the number of keys."""
    groups = list(
        deliveries.filter(_held())
        .values("subscription_id", "ordering_key")
        .annotate(held=Count("pk"), since=Min("created_at"))
        .order_by("since")[:limit]
    )
    if not groups:
        return []
    pairs = Q()
    for g in groups:
        pairs |= Q(subscription_id=g["subscription_id"], ordering_key=g["ordering_key"])
    heads = {
        (d.subscription_id, d.ordering_key): d
        for d in Delivery.objects.using(working_alias())
        .filter(pairs, status__in=UNFINISHED)
        .filter(~_earlier_unfinished())
        .select_related("event", "subscription")
    }
    return [
        BlockedKey(
            g["subscription_id"],
            g["ordering_key"],
            heads.get((g["subscription_id"], g["ordering_key"])),
            g["held"],
            g["since"],
        )
        for g in groups
    ]
