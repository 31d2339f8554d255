"""Every change of a delivery's status: one guarded statement each, one implementation for
SQLite and PostgreSQL.

A transition only happens if the row is still in the state the caller saw (status and attempt
number), so two workers holding the same message, or a worker and the sweep, cannot both win:
the loser's statement matches no row and it stops.

    pending | retrying ──claim──▶ sending ──record──▶ succeeded | retrying | failed | discarded
    sending ──release──▶ pending | retrying (at a cap, with its wait_reason), or discarded
                         (not sendable)
    sending (claim older than the lease) ──expire──▶ retrying | failed
    pending | retrying ──discard──▶ discarded (endpoint disabled, filters changed)
    finished | waiting ──reopen──▶ retrying (redelivery, replay)
    finished | retrying parked ──reopen_one──▶ retrying (a manual retry, refused while queued)

Time: claims, leases and delivered_at are the database's clock (`Now()` inside the statement),
never a worker's: two workers whose clocks disagree never judge each other's claims
(docs/guarantees.md, "One clock").

The two statements of every attempt, `claim` and `record`, are built here from the models'
`_meta` by field name (the ORM has no UPDATE ... RETURNING) and read back by name through each
field's own database converters; everything else is the ORM. Both run on the alias the host's
routers write deliveries to (`connections.working_alias()`).
"""

from __future__ import annotations

import datetime as dt
import uuid
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from django.db import connections, transaction
from django.db.models import Field, ForeignKey, Model, Q, QuerySet
from django.db.models.functions import Now

from subscriptions.matching import filters_match
from subscriptions.models import Subscription

from ..models import (
    ERROR_MAX_CHARS,
    FINISHED,
    UNFINISHED,
    WAITING,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    ErrorKind,
)
from . import ordering
from .clock import db_now_sql
from .connections import working_alias

# A value that is written as the database's `now()` by the statements built here.
DB_NOW = Now()


@dataclass(frozen=True)
class Ending:
    """How an attempt ends its delivery: the next status, what the row records of the answer,
    and for `retrying` the due time (on the database's clock, `clock.now()` plus the delay).
    A success's `delivered_at` is the database's `now()` when the attempt is recorded."""

    status: str
    status_code: int | None = None
    error: str = ""
    due: dt.datetime | None = None

    def changes(self) -> dict[str, object]:
        """The delivery's columns this ending writes, by field name."""
        return {
            "status": self.status,
            "next_attempt_at": self.due,
            "last_status_code": self.status_code,
            "last_error": self.error[:ERROR_MAX_CHARS],
            "delivered_at": DB_NOW if self.status == DeliveryStatus.SUCCEEDED else None,
            "updated_at": DB_NOW,
        }


# --- Statements built from _meta ---------------------------------------------------------------


def _field(model: type[Model], name: str) -> Field[Any, Any]:
    """The concrete field `name` of `model` (`_meta.get_field` also answers reverse relations
    and generic keys, which have no column: a name of one is a bug here, raised as TypeError)."""
    field = model._meta.get_field(name)
    if not isinstance(field, Field):
        raise TypeError(f"{model.__name__}.{name} is not a concrete field")
    return field


def _col(model: type[Model], name: str, quote: Any) -> str:
    return str(quote(_field(model, name).column))


def _assignments(
    model: type[Model], values: dict[str, object], connection: Any
) -> tuple[str, list[object]]:
    """`col = %s, ...` for `values` by field name, with DB_NOW written as the database's now."""
    quote, now = connection.ops.quote_name, db_now_sql(connection)
    parts: list[str] = []
    params: list[Any] = []
    for name, value in values.items():
        field = _field(model, name)
        if value is DB_NOW:
            parts.append(f"{quote(field.column)} = {now}")
        else:
            parts.append(f"{quote(field.column)} = %s")
            params.append(field.get_db_prep_save(value, connection))
    return ", ".join(parts), params


@dataclass(frozen=True)
class _Reader:
    """Turns returned columns into model instances, by field: each value goes through the
    converters the ORM applies to that field on this connection (`from_db_value`: JSON, and
    SQLite's text datetimes, integer booleans and hex UUIDs)."""

    model: type[Model]
    fields: tuple[Field, ...]
    converters: tuple[tuple[Any, list[Any]], ...]

    @classmethod
    def of(
        cls, model: type[Model], connection: Any, names: tuple[str, ...] | None = None
    ) -> _Reader:
        """Every concrete field of `model`, or those named."""
        fields = (
            tuple(model._meta.concrete_fields)
            if names is None
            else tuple(_field(model, name) for name in names)
        )
        converters = []
        for field in fields:
            col = field.get_col(model._meta.db_table)
            found = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
            converters.append((col, found))
        return cls(model, fields, tuple(converters))

    def convert(self, *values: object, connection: Any) -> list[object]:
        """`values` (one per field, in order) as the ORM would load them."""
        converted = []
        for value, (col, converters) in zip(values, self.converters, strict=True):
            for converter in converters:
                value = converter(value, col, connection)
            converted.append(value)
        return converted

    def build(self, alias: str, values: Iterable[object], connection: Any) -> Any:
        # Every concrete field, named: `from_db` (Django's documented loading hook) gets the
        # names and the values from the same `_meta` walk, so they cannot drift apart.
        converted = self.convert(*values, connection=connection)
        return self.model.from_db(alias, [f.attname for f in self.fields], converted)


# The attempt row's columns, in `_meta` order, as `record` inserts them.
_INSERTED = tuple(f for f in DeliveryAttempt._meta.concrete_fields if not f.primary_key)


@dataclass(frozen=True)
class _RecordStatements:
    insert: str
    update: str
    touch: str  # "" when the ending is not a success
    combined: str  # PostgreSQL: the three as one statement (WITH clauses of a SELECT); "" else
    failing_since: _Reader  # reads the touched endpoint's `failing_since` back


# Built once per connection and ending shape (which columns take `now()`, whether it touches
# the endpoint).
_records: weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], _RecordStatements]] = (
    weakref.WeakKeyDictionary()
)


def _touch_statement(connection: Any) -> str:
    """Note an endpoint's success: its `last_success_at`, at most once a second (pages show it
    to the second), unless a failing run is open; `RETURNING failing_since` says whether one is.

    Params: the success's time, the endpoint's id, the start of that time's second. A row
    already noted this second is not written (no lock: a busy endpoint's deliveries do not
    queue on its row); a failing one is matched, unchanged, so that its run's start comes back.
    """
    quote = connection.ops.quote_name
    col = {name: _col(Subscription, name, quote) for name in ("last_success_at", "failing_since")}
    last, failing = col["last_success_at"], col["failing_since"]
    key = quote(Subscription._meta.pk.column)
    return (
        f"UPDATE {quote(Subscription._meta.db_table)} SET {last} = "
        f"CASE WHEN {failing} IS NULL THEN %s ELSE {last} END "
        f"WHERE {key} = %s AND ({failing} IS NOT NULL OR {last} IS NULL OR {last} < %s) "
        f"RETURNING {failing}"
    )


def _record_statements(connection: Any, now_at: tuple[bool, ...], touch: bool) -> _RecordStatements:
    """`record`'s INSERT and guarded UPDATE on this connection, for an ending whose columns
    (`Ending.changes()`, in that order) take the database's now where `now_at` says so, and
    with `touch` the endpoint's success note (`_touch_statement`)."""
    made = _records.setdefault(connection, {})
    found = made.get((now_at, touch))
    if found is not None:
        return found
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in _INSERTED)
    insert = (
        f"INSERT INTO {quote(DeliveryAttempt._meta.db_table)} ({columns}) "
        f"VALUES ({', '.join(['%s'] * len(_INSERTED))}) "
        f"RETURNING {quote(DeliveryAttempt._meta.pk.column)}"
    )
    shape = dict(zip(Ending("").changes(), now_at, strict=True))
    assignments, _params = _assignments(
        Delivery, {name: DB_NOW if now else None for name, now in shape.items()}, connection
    )
    guard = " AND ".join(
        f"{_col(Delivery, name, quote)} = %s" for name in ("id", "status", "attempts")
    )
    update = f"UPDATE {quote(Delivery._meta.db_table)} SET {assignments} WHERE {guard}"
    touched = _touch_statement(connection) if touch else ""
    combined = ""
    if connection.vendor == "postgresql":  # SQLite has no data-modifying WITH: run one by one
        combined = (
            f"WITH inserted AS ({insert}), updated AS ({update} RETURNING 1)"
            + (f", touched AS ({touched})" if touched else "")
            + " SELECT (SELECT * FROM inserted), (SELECT count(*) FROM updated)"
            + (", (SELECT * FROM touched)" if touched else "")
        )
    failing = _Reader.of(Subscription, connection, ("failing_since",))
    statements = _RecordStatements(insert, update, touched, combined, failing)
    made[(now_at, touch)] = statements
    return statements


@dataclass(frozen=True)
class _ClaimStatement:
    sql: str
    readers: tuple[_Reader, _Reader, _Reader]  # delivery, event, subscription


# Built once per connection (the SQL of `now()` and the converters depend on its backend).
_claims: weakref.WeakKeyDictionary[Any, _ClaimStatement] = weakref.WeakKeyDictionary()


def _claim_statement(connection: Any) -> _ClaimStatement:
    found = _claims.get(connection)
    if found is not None:
        return found
    quote, now = connection.ops.quote_name, db_now_sql(connection)
    table = quote(Delivery._meta.db_table)
    readers = [_Reader.of(Delivery, connection)]
    # SQLite's RETURNING names the updated table's columns unqualified, and no alias of it.
    own = [quote(f.column) for f in readers[0].fields]
    # PostgreSQL: the related rows joined to the UPDATE's result (a WITH clause), a short
    # statement whose parsed form psycopg caches (under 4 KB). SQLite's RETURNING may not name
    # another table, and it has no UPDATE in WITH: one scalar subquery per related column.
    joined = connection.vendor == "postgresql"
    joins: list[str] = []
    returned = [f"c.{column}" for column in own] if joined else list(own)
    for alias, name in (("e", "event"), ("s", "subscription")):
        fk = _field(Delivery, name)
        if not isinstance(fk, ForeignKey) or not isinstance(fk.related_model, type):
            raise TypeError(f"Delivery.{name} is not a foreign key")
        related = fk.related_model
        reader = _Reader.of(related, connection)
        readers.append(reader)
        related_table, key = quote(related._meta.db_table), quote(fk.target_field.column)
        if joined:
            on = f"{alias}.{key} = c.{quote(fk.column)}"
            joins.append(f"LEFT JOIN {related_table} {alias} ON {on}")
            returned += [f"{alias}.{quote(f.column)}" for f in reader.fields]
        else:
            returned += [
                f"(SELECT r.{quote(f.column)} FROM {related_table} r "
                f"WHERE r.{key} = {table}.{quote(fk.column)})"
                for f in reader.fields
            ]
    col = {name: _col(Delivery, name, quote) for name in ("id", "status", "attempts")}
    claimed = ", ".join(
        f"{_col(Delivery, name, quote)} = {now}"
        for name in ("claimed_at", "next_attempt_at", "updated_at")
    )
    update = (
        f"UPDATE {table} SET {col['status']} = %s, {col['attempts']} = %s, {claimed} "
        f"WHERE {col['id']} = %s AND {col['status']} IN (%s, %s) AND {col['attempts']} = %s "
        # Ordering: a keyed delivery is claimed only as its key's head, in this same statement.
        f"AND {ordering.claim_guard_sql(connection, table)} "
    )
    if joined:
        sql = (
            f"WITH c AS ({update}RETURNING {', '.join(own)}) "
            f"SELECT {', '.join(returned)} FROM c {' '.join(joins)}"
        )
    else:
        sql = f"{update}RETURNING {', '.join(returned)}"
    statement = _ClaimStatement(sql, (readers[0], readers[1], readers[2]))
    _claims[connection] = statement
    return statement


# --- The attempt's two statements ---------------------------------------------------------------


def claim(delivery_id: int, number: int) -> Delivery | None:
    """Take the delivery for attempt `number` and load what the attempt needs, in one
    statement: the delivery (now `sending`, claimed at the database's `now()`) with its event
    and subscription. None if it was not waiting for exactly that attempt (finished, or another
    message's or the sweep's), or if it has an ordering key and an earlier delivery of that key
    to the same subscription has not ended (`ordering.claim_guard_sql`).

    While sending, `next_attempt_at` is the claim's time; the claim's lease ends
    `stale_sending_after` seconds after it, on the database's clock (`expire`).
    """
    alias = working_alias()
    connection = connections[alias]
    statement = _claim_statement(connection)
    params: list[Any] = [DeliveryStatus.SENDING, number, delivery_id, *WAITING, number - 1]
    with transaction.mark_for_rollback_on_error(alias), connection.cursor() as cursor:
        cursor.execute(statement.sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    values = iter(row)
    delivery, event, subscription = (
        reader.build(alias, [next(values) for _ in reader.fields], connection)
        for reader in statement.readers
    )
    if event.pk is None or subscription.pk is None:  # deleted under the claim
        return None
    delivery.event, delivery.subscription = event, subscription
    return delivery


class Recorded(NamedTuple):
    """What `record` stored: the attempt row, whether the delivery was still this attempt's,
    and, for a success, when the endpoint's open failing run began (None: none is open)."""

    attempt: DeliveryAttempt
    won: bool
    failing_since: dt.datetime | None = None


def record(
    attempt: DeliveryAttempt, ending: Ending, *, success_at: dt.datetime | None = None
) -> Recorded:
    """Store the attempt row and apply `ending` to its delivery if the delivery is still this
    attempt's (`sending`, same number), both or neither. The row is stored either way (the
    request was sent); `Recorded.won` says whether the delivery was still this attempt's.

    With `success_at` (the receiver accepted it, at that time on the database's clock) the
    endpoint's `last_success_at` is noted in the same statement, at most once a second and not
    while a failing run is open; `Recorded.failing_since` is that run's start, for the caller
    to end it (`attempts`).

    Raises IntegrityError, with nothing stored, if this attempt number was already recorded
    (the sweep took the attempt for lost). On PostgreSQL one statement (the INSERT and the
    endpoint's note in WITH clauses of the UPDATE: no BEGIN/COMMIT round trips in autocommit);
    elsewhere the same statements in a transaction.
    """
    alias = working_alias()
    connection = connections[alias]
    changes = ending.changes()
    statements = _record_statements(
        connection, tuple(v is DB_NOW for v in changes.values()), success_at is not None
    )
    inserted: list[Any] = [
        f.get_db_prep_save(f.pre_save(attempt, True), connection) for f in _INSERTED
    ]
    changed: list[Any] = [
        _field(Delivery, name).get_db_prep_save(value, connection)
        for name, value in changes.items()
        if value is not DB_NOW
    ]
    guarded: list[Any] = [attempt.delivery_id, DeliveryStatus.SENDING, attempt.number]
    touched: list[Any] = []
    if success_at is not None:
        noted = _field(Subscription, "last_success_at")
        touched = [
            noted.get_db_prep_save(success_at, connection),
            Subscription._meta.pk.get_db_prep_save(attempt.delivery.subscription_id, connection),
            noted.get_db_prep_save(success_at.replace(microsecond=0), connection),
        ]
    failing: Any = None
    with transaction.mark_for_rollback_on_error(alias), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(statements.combined, [*inserted, *changed, *guarded, *touched])
            pk, won, *rest = cursor.fetchone()
            failing = rest[0] if rest else None
        else:
            with transaction.atomic(using=alias):
                cursor.execute(statements.insert, inserted)
                pk = cursor.fetchone()[0]
                cursor.execute(statements.update, [*changed, *guarded])
                won = cursor.rowcount
                if statements.touch:
                    cursor.execute(statements.touch, touched)
                    row = cursor.fetchone()
                    failing = row[0] if row else None
    every = DeliveryAttempt._meta.concrete_fields
    values = [pk if f.primary_key else getattr(attempt, f.attname) for f in every]
    stored = DeliveryAttempt.from_db(alias, [f.attname for f in every], values)
    if failing is not None:
        failing = statements.failing_since.convert(failing, connection=connection)[0]
    return Recorded(stored, bool(won), failing)


def release(
    delivery_id: int,
    number: int,
    *,
    until: dt.datetime | None = None,
    discard_reason: str = "",
    wait_reason: str = "",
) -> bool:
    """Give back the claim of attempt `number` without having sent anything: the attempt number
    is restored, so no attempt number is used without an attempt row.

    With `discard_reason` the delivery ends `discarded` (its subscription was disabled or no
    longer selects the event); otherwise it waits again (`pending` before a first attempt,
    `retrying` after) until `until` (its endpoint was at its in-flight cap). With `wait_reason`
    (a `WaitReason`: which cap refused it) that reason is recorded for attempt `number` and
    shown until that attempt starts (`Delivery.waiting_for`). False if the delivery is no
    longer this attempt's.
    """
    if discard_reason:
        changes: dict[str, object] = {
            "status": DeliveryStatus.DISCARDED,
            "next_attempt_at": None,
            "last_error": discard_reason[:ERROR_MAX_CHARS],
        }
    else:
        waiting = DeliveryStatus.PENDING if number == 1 else DeliveryStatus.RETRYING
        changes = {"status": waiting, "next_attempt_at": until}
        if wait_reason:
            changes.update(wait_reason=wait_reason, wait_attempt=number)
    return bool(
        _claimed(delivery_id, number).update(
            attempts=number - 1, claimed_at=None, updated_at=Now(), **changes
        )
    )


def _claimed(delivery_id: int, number: int) -> QuerySet[Delivery]:
    # The guard of every transition out of `sending`: still this attempt's.
    return Delivery.objects.using(working_alias()).filter(
        pk=delivery_id, status=DeliveryStatus.SENDING, attempts=number
    )


# --- The sweep's transitions ---------------------------------------------------------------------


def expired_claims(lease_seconds: float) -> QuerySet[Delivery]:
    """Deliveries claimed more than `lease_seconds` ago on the database's clock: their worker is
    presumed dead (a live one ends its attempt within its deadline, well inside the lease)."""
    return Delivery.objects.using(working_alias()).expired_claims(lease_seconds)


def expire(
    delivery_id: int, number: int, claimed_at: dt.datetime, *, lease_seconds: float, last: bool
) -> bool:
    """End the claim of a worker that vanished mid-attempt: record attempt `number` as
    interrupted (unless its worker recorded it before dying) and make the delivery due now
    (`retrying`), or `failed` when that was the last attempt of the schedule.

    Guarded on the lease itself, judged again inside the UPDATE on the database's clock: a
    delivery whose attempt ended, or that was claimed again since, is left alone.
    `claimed_at` (as read with the expired claim) is the interrupted attempt's start."""
    alias = working_alias()
    with transaction.atomic(using=alias):
        still = expired_claims(lease_seconds).filter(pk=delivery_id, attempts=number)
        if last:
            changes: dict[str, object] = {
                "status": DeliveryStatus.FAILED,
                "next_attempt_at": None,
                "last_error": "Worker lost during the last attempt of the schedule.",
            }
        else:
            changes = {
                "status": DeliveryStatus.RETRYING,
                "next_attempt_at": Now(),
                "last_error": "Worker lost during the attempt.",
            }
        if not still.update(updated_at=Now(), **changes):
            return False
        recorded = DeliveryAttempt.objects.using(alias).filter(
            delivery_id=delivery_id, number=number
        )
        if not recorded.exists():
            DeliveryAttempt.objects.using(alias).create(
                delivery_id=delivery_id,
                number=number,
                started_at=claimed_at,
                error_kind=ErrorKind.INTERRUPTED,
                error="The worker stopped during this attempt.",
            )
    return True


def postpone(delivery_ids: Iterable[int]) -> int:
    """Make waiting deliveries due at the database's `now()` (the sweep leases what it
    re-enqueues: the next sweep leaves them alone for SWEEP_GRACE)."""
    return (
        Delivery.objects.using(working_alias())
        .filter(pk__in=list(delivery_ids), status__in=WAITING)
        .update(next_attempt_at=Now())
    )


# --- Discarding and reopening ---------------------------------------------------------------------


def discard(waiting: QuerySet[Delivery], reason: str) -> int:
    """Discard the deliveries of `waiting` that still wait for an attempt, recording `reason`;
    returns how many this call discarded. Deliveries being sent right now finish their attempt
    (their own outcome applies). The one way waiting deliveries are discarded."""
    return waiting.filter(status__in=WAITING).update(
        status=DeliveryStatus.DISCARDED,
        next_attempt_at=None,
        last_error=reason[:ERROR_MAX_CHARS],
        updated_at=Now(),
    )


def waiting_for(subscription_id: uuid.UUID | str) -> QuerySet[Delivery]:
    """A subscription's deliveries (for `discard`), on the working alias."""
    return Delivery.objects.using(working_alias()).filter(subscription_id=subscription_id)


def disabled_reason(reason: str) -> str:
    """The recorded error of a delivery discarded because its subscription was disabled."""
    return f"Discarded: {reason}"[:ERROR_MAX_CHARS]


def disable(subscription: Subscription, reason: str) -> int | None:
    """Disable `subscription` with `reason` and discard what waits for it; returns how many
    deliveries this disabling discarded, or None if it was already disabled.

    The discard runs in the disabling's transaction, so the `subscription_disabled` receiver
    that discards after commit (for every other way of disabling) finds nothing left: the count
    is what this call changed, not a recount.
    """
    from subscriptions.services import disable_subscription

    with transaction.atomic(using=working_alias()):
        if not disable_subscription(subscription, reason):
            return None
        return discard(waiting_for(subscription.pk), disabled_reason(reason))


def unselected_reason(event_type: str) -> str:
    """The recorded reason of a delivery discarded because its subscription's filters changed."""
    return f"Subscription no longer selects {event_type!r}."


def discard_unselected(subscription_id: uuid.UUID | str, filters: Iterable[str]) -> int:
    """Discard the waiting deliveries of a subscription whose event type `filters` no longer
    select (test events, sent whatever the filters, stay). One query for the waiting types, one
    `discard` per type dropped; returns the number discarded."""
    waiting = waiting_for(subscription_id).filter(
        status__in=WAITING, event__target_subscription__isnull=True
    )
    types = set(waiting.values_list("event__type", flat=True).distinct().order_by())
    filters = list(filters)
    discarded = sum(
        discard(waiting.filter(event__type=event_type), unselected_reason(event_type))
        for event_type in sorted(t for t in types if not filters_match(filters, t))
    )
    if discarded:
        ordering.release_subscription(subscription_id)  # a discarded head frees its key
    return discarded


def reopen(delivery_ids: Iterable[int], now: dt.datetime) -> list[int]:
    """Make finished or waiting deliveries due again for one more attempt (redelivery, replay).

    Returns the ids that were reopened; deliveries being sent right now are left alone.
    """
    ids = list(delivery_ids)
    rows = Delivery.objects.using(working_alias())
    rows.filter(pk__in=ids).exclude(status=DeliveryStatus.SENDING).update(
        status=DeliveryStatus.RETRYING,
        next_attempt_at=now,
        delivered_at=None,
        updated_at=now,
    )
    return list(
        rows.filter(pk__in=ids, status=DeliveryStatus.RETRYING, next_attempt_at=now)
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
    rows = Delivery.objects.using(working_alias())
    reopenable = Q(status__in=FINISHED) | Q(
        status=DeliveryStatus.RETRYING, next_attempt_at__gt=queued_until
    )
    changed = rows.filter(reopenable, pk=delivery_id).update(
        status=DeliveryStatus.RETRYING, next_attempt_at=now, delivered_at=None, updated_at=now
    )
    if not changed:
        return None
    attempts = rows.filter(pk=delivery_id).values_list("attempts", flat=True).first()
    return None if attempts is None else attempts + 1


def reopen_unqueued(
    delivery_ids: Iterable[int], now: dt.datetime, queued_until: dt.datetime
) -> list[int]:
    """`reopen_one` for many deliveries at once (a bulk retry): make due now those that are
    finished or parked beyond `queued_until`, leaving alone those already queued or under way;
    returns the ids this call reopened.

    One guarded UPDATE per call: of two concurrent bulk retries over the same rows, each row
    goes to one of them (the other finds it due, hence queued), so no delivery gets two
    messages. The ids reopened are read back by the `now` this call wrote: the caller passes a
    `now` of its own (the other call's rows carry another).
    """
    ids = list(delivery_ids)
    if not ids:
        return []
    rows = Delivery.objects.using(working_alias())
    reopenable = Q(status__in=FINISHED) | Q(
        status=DeliveryStatus.RETRYING, next_attempt_at__gt=queued_until
    )
    changed = rows.filter(reopenable, pk__in=ids).update(
        status=DeliveryStatus.RETRYING, next_attempt_at=now, delivered_at=None, updated_at=now
    )
    if not changed:
        return []
    return list(
        rows.filter(pk__in=ids, status=DeliveryStatus.RETRYING, next_attempt_at=now, updated_at=now)
        .values_list("pk", flat=True)
        .order_by("pk")
    )


__all__ = [
    "DB_NOW",
    "UNFINISHED",
    "Ending",
    "Recorded",
    "claim",
    "disable",
    "disabled_reason",
    "discard",
    "discard_unselected",
    "expire",
    "expired_claims",
    "postpone",
    "record",
    "release",
    "reopen",
    "reopen_one",
    "reopen_unqueued",
    "unselected_reason",
    "waiting_for",
]
