"""Publishing an event and fanning it out to its subscribers."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Count, Q

from subscriptions.channels import validate_channels
from subscriptions.contracts import contracts
from subscriptions.eventschema import PatternError, first_error
from subscriptions.matching import is_valid_event_type
from subscriptions.models import Subscription, Tenant, default_tenant_key
from webhooks_core.text import find_unstorable

from .. import dispatch, tracing
from ..conf import webhook_settings
from ..dispatch import BROKER_ERRORS, enqueue_attempts
from ..models import Delivery, DeliveryStatus, Event
from ..payloads import dumps
from ..versions import delivery_versions, render_versions, serialize_event
from . import caches, clock, fairness, ordering
from .connections import working_alias

logger = logging.getLogger(__name__)


class PublishError(ValueError):
    """The event cannot be published; `field` names the offending input."""

    field = "non_field_errors"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if field:
            self.field = field


class PayloadTooLarge(PublishError):
    field = "data"


class SchemaValidationError(PublishError):
    field = "data"


# Longest idempotency key (the column's size).
IDEMPOTENCY_KEY_MAX_LENGTH = 255


def idempotency_key_problem(key: str) -> str | None:
    """Why `key` cannot be an idempotency key, or None if it can.

    A key is 1 to 255 printable characters (`str.isprintable`: no control characters, no
    U+0000, no lone surrogates, which no database can store) without surrounding spaces. It
    may come as an HTTP header, where leading and trailing spaces do not survive.
    """
    if not isinstance(key, str) or not key:
        return "An idempotency key is a non-empty string."
    if len(key) > IDEMPOTENCY_KEY_MAX_LENGTH:
        return f"An idempotency key is at most {IDEMPOTENCY_KEY_MAX_LENGTH} characters."
    if not key.isprintable() or key != key.strip():
        return (
            "An idempotency key is printable text without control characters or surrounding spaces."
        )
    return None


class IdempotencyConflict(PublishError):
    """The idempotency key was used before in this tenant for another body. The API answers
    422 (IETF draft-ietf-httpapi-idempotency-key-header, section 2.7: a key reused with a
    different payload)."""

    field = "idempotency_key"


def body_hash(event_type: str, data: Any) -> str:
    """SHA-256 (hex) of the type and data as canonical JSON (sorted keys, compact), so that the
    same body with its keys in another order is the same body."""
    canonical = json.dumps(
        {"type": event_type, "data": data},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def tenant_key(tenant: str | Tenant | None) -> str:
    """The key of `tenant` (None: the default tenant), its row created on first use.

    Raises PublishError (field `tenant`) for a malformed key.
    """
    if isinstance(tenant, Tenant):
        return tenant.pk
    try:
        return caches.tenant_key(default_tenant_key() if tenant is None else tenant)
    except DjangoValidationError as exc:
        raise PublishError(" ".join(exc.messages), field="tenant") from exc


def validate_event(event_type: str, data: Any) -> None:
    """Raise PublishError unless `data` may be published as `event_type`.

    In order: the type's name; `data` is a JSON object that can be stored and sent exactly as
    given (no U+0000, no lone surrogates, no NaN or Infinity: RFC 8259 §6 and §8.2, and
    PostgreSQL's jsonb refuses U+0000) nested at most `MAX_PAYLOAD_DEPTH` levels; its size
    (`PayloadTooLarge` above `MAX_PAYLOAD_BYTES`); the event type's JSON Schema, if any
    (`SchemaValidationError`). The API and `publish()` share this one check.
    """
    if not isinstance(event_type, str) or not is_valid_event_type(event_type):
        raise PublishError(
            "An event type is a dotted name of letters, digits, '_' and '-'.", field="type"
        )
    if not isinstance(data, dict):
        raise PublishError("Event data must be a JSON object.", field="data")
    problem = find_unstorable(data, max_depth=int(webhook_settings.MAX_PAYLOAD_DEPTH))
    if problem is not None:
        raise PublishError(f"Event data cannot be published: {problem}.", field="data")
    size = len(dumps(data))
    limit = int(webhook_settings.MAX_PAYLOAD_BYTES)
    if size > limit:
        raise PayloadTooLarge(f"Event data is {size} bytes; the limit is {limit} bytes.")
    declared = contracts.latest(event_type)
    schema = declared.schema if declared is not None else caches.event_schema(event_type)
    if schema:
        try:
            # RE2 runs the schema's patterns (linear time; see subscriptions.eventschema).
            error = first_error(data, schema)
        except RecursionError:
            # A recursive schema ($ref "#") descends as deep as the data: refuse, never 500.
            raise SchemaValidationError(
                f"Event data is nested too deeply to check against the schema of {event_type!r}."
            ) from None
        except PatternError as exc:
            # Stored before patterns were checked at write time: the type's schema needs fixing.
            raise SchemaValidationError(
                f"The schema of {event_type!r} cannot be checked: {exc}", field="type"
            ) from None
        if error is not None:
            where = "/".join(str(part) for part in error.absolute_path) or "(root)"
            raise SchemaValidationError(
                f"Event data does not match the schema of {event_type!r} at {where}: "
                f"{error.message}"
            )


@dataclass
class Publication:
    """What one `publish_event` call did.

    `created` is False for an idempotent repeat (the first event is returned, nothing is sent
    again). `deliveries` is how many deliveries the fan-out queued (to active subscriptions), or
    counted for a fan-out handed to a worker; `skipped` how many it recorded as `skipped` (for
    matching disabled subscriptions, offered for replay once they are enabled again). Both are
    None until the fan-out has run (the caller's transaction has not committed), and are copied
    onto the event as `event.delivery_count` and `event.skipped_count` when it runs.
    """

    event: Event
    created: bool
    deliveries: int | None = None
    skipped: int | None = None

    def counted(self, deliveries: int, skipped: int) -> None:
        """Record the fan-out's figures here and on the event (`publish()` returns the event)."""
        self.deliveries = self.event.delivery_count = deliveries  # type: ignore[attr-defined]
        self.skipped = self.event.skipped_count = skipped  # type: ignore[attr-defined]


def publish(
    type: str,
    data: Any,
    *,
    tenant: str | Tenant | None = None,
    idempotency_key: str | None = None,
    ordering_key: str | None = None,
    broadcast: bool = False,
    subscription: Subscription | None = None,
    channels: list[str] | None = None,
) -> Event:
    """Store an event and, once the caller's transaction commits, fan it out; the event.

    The event goes to the matching active subscriptions of `tenant` (a key such as "org_42";
    None: `DEFAULT_TENANT`), never to another tenant's. `broadcast=True` sends it to the
    matching subscriptions of every tenant (it still belongs to `tenant`). With `subscription`,
    it goes to that subscription only (test events) and belongs to its tenant.

    For a type declared in code (`subscriptions.contracts.register_event`), `data` may be a
    model instance (or any object): it is serialized through the latest version's serializer,
    and each older version rendered by the host's down-converters; each delivery sends the
    version its subscription is pinned to. A dict is taken as already serialized. Raises
    `ContractError` if a version cannot be rendered (see `versions.render_versions`).

    Publishing again in the same tenant with the same `idempotency_key` and the same type and
    data returns the first event and creates nothing; another body raises IdempotencyConflict.
    Keys are per tenant: two tenants using one key get two events.

    `channels` (a list of up to 10 names) are carried by the event: a subscription with
    channels receives it only if they share one; subscriptions without channels receive it
    whatever its channels. Each subscription's `filter` is evaluated once, in the fan-out: by
    the routing query on PostgreSQL (compiled filters), in Python on SQLite (docs/filters.md).

    Events of a tenant with the same `ordering_key` (e.g. "order_1001") reach each
    subscription in publish order, each once the previous one has ended (succeeded, failed for
    good or discarded): see `services.ordering` and docs/guarantees.md. A publish with a key
    waits for an uncommitted publish of the same key to end (that is what makes the order
    exact). Not with `broadcast` or `subscription`.

    Raises `PublishError` (a ValueError naming its `field`) for input that cannot be published:
    see `validate_event`, `idempotency_key_problem`, `ordering.ordering_key_problem` and
    `tenant_key`; never fails because the broker is down.

    The returned event carries two attributes besides its fields: `event.delivery_count`, the
    number of deliveries queued to active subscriptions, and `event.skipped_count`, the number
    recorded as `skipped` for matching disabled ones (replayable once they are enabled again).
    Both are None until the fan-out has run: at once in autocommit, when the caller's
    transaction commits otherwise. An idempotent repeat carries the first event's figures.
    `publish_event` returns them too, in a `Publication`.
    """
    return publish_event(
        type,
        data,
        tenant=tenant,
        idempotency_key=idempotency_key,
        ordering_key=ordering_key,
        broadcast=broadcast,
        subscription=subscription,
        channels=channels,
    ).event


@tracing.traced_publish
def publish_event(
    type: str,
    data: Any,
    *,
    tenant: str | Tenant | None = None,
    idempotency_key: str | None = None,
    ordering_key: str | None = None,
    broadcast: bool = False,
    subscription: Subscription | None = None,
    channels: list[str] | None = None,
) -> Publication:
    """`publish`, answering with a `Publication`: the event, whether it was created now, and
    its delivery count once the fan-out has run (at once in autocommit)."""
    key = subscription.tenant_id if subscription is not None else tenant_key(tenant)
    if idempotency_key:
        problem = idempotency_key_problem(idempotency_key)
        if problem is not None:
            raise PublishError(problem, field="idempotency_key")
    if ordering_key is not None:
        problem = ordering.ordering_key_problem(ordering_key)
        if problem is None and (broadcast or subscription is not None):
            # The order is kept per tenant's key; a broadcast reaches other tenants' endpoints,
            # where it would interleave with their own keys.
            problem = "An ordering key cannot be combined with a broadcast or a test event."
        if problem is not None:
            raise PublishError(problem, field="ordering_key")
    # Before the repeat check: the body hash needs data that serialises (depth, storable text),
    # and input that cannot be published is refused whatever its key.
    try:
        channels = validate_channels(channels)
    except DjangoValidationError as exc:
        raise PublishError(" ".join(exc.messages), field="channels") from exc
    data = serialize_event(type, data)
    validate_event(type, data)
    version, renditions = render_versions(type, data)
    digest = body_hash(type, data)
    alias = working_alias()
    events = Event.objects.using(alias)
    if idempotency_key:
        existing = events.filter(tenant_id=key, idempotency_key=idempotency_key).first()
        if existing is not None:
            return _repeat(existing, digest)
    event = Event(
        created_at=clock.now(),  # the database's clock, as every time an attempt writes
        tenant_id=key,
        broadcast=bool(broadcast),
        type=type,
        data=data,
        channels=channels,
        idempotency_key=idempotency_key or None,
        body_hash=digest,
        target_subscription=subscription,
        version=version,
        renditions=renditions,
        ordering_key=ordering_key,
        traceparent=tracing.current_traceparent(),  # "" unless traced
    )
    try:
        with transaction.atomic(using=alias):
            if ordering_key is not None:
                event.ordering_seq = ordering.next_seq(key, ordering_key, alias)
            event.save(force_insert=True, using=alias)
    except IntegrityError:
        # A concurrent publish with the same key won the race: theirs is the event.
        if not idempotency_key:
            caches.clear()  # or a cached tenant was deleted by another process meanwhile
            raise
        return _repeat(events.get(tenant_id=key, idempotency_key=idempotency_key), digest)
    # Set when the fan-out runs (Publication.counted); see publish().
    event.delivery_count = event.skipped_count = None  # type: ignore[attr-defined]
    publication = Publication(event, created=True)
    # Run in the producer's trace context, which may have ended by the commit.
    after_commit = tracing.carry(functools.partial(_fan_out_after_commit, publication))
    transaction.on_commit(after_commit, using=alias)
    return publication


def expected_deliveries(event: Event) -> int:
    """How many deliveries the event gets: counted if fanned out, else the matching active
    subscriptions now (the caller's transaction may not have committed yet)."""
    return expected_counts(event)[0]


def expected_counts(event: Event) -> tuple[int, int]:
    """(queued, skipped): the event's deliveries to active subscriptions and those recorded as
    `skipped` for disabled ones; counted if fanned out, else what the fan-out would make now
    (the matching active and disabled subscriptions)."""
    if event.fanned_out_at is not None:
        counts = (
            Delivery.objects.using(working_alias())
            .filter(event_id=event.pk)
            .aggregate(
                skipped=Count("pk", filter=Q(status=DeliveryStatus.SKIPPED)), total=Count("pk")
            )
        )
        return counts["total"] - counts["skipped"], counts["skipped"]
    if event.target_subscription_id:
        active, inactive = _all_matching(event)
        return len(active), len(inactive)
    return _count_routed(event)


def _count_routed(event: Event) -> tuple[int, int]:
    """(active, disabled) subscriptions the event goes to, counted in one pass."""
    return _candidates(event).routed_counts(event.type, channels=event.channels, data=event.data)


def _candidates(event: Event) -> Any:
    """The subscriptions an event may reach: its tenant's, or every tenant's for a broadcast.
    Read where they are written (a replica may not have a subscription created a moment ago)."""
    subscriptions = Subscription.objects.using(working_alias())
    if event.broadcast:
        return subscriptions.all()
    return subscriptions.for_tenant(event.tenant_id)


def _matching(event: Event, limit: int | None = None) -> tuple[list, list] | None:
    """Ids of the active and inactive subscriptions the event goes to (types and channels
    matched by the database; filters by the same query on PostgreSQL, else once in Python:
    `SubscriptionQuerySet.route`); with `limit`, None when more than `limit` candidates."""
    if event.target_subscription_id:
        # A targeted (test) event goes to its subscription whatever the event filters.
        active: list = []
        inactive: list = []
        target = Subscription.objects.using(working_alias()).filter(pk=event.target_subscription_id)
        for pk, is_active in target.values_list("pk", "is_active"):
            (active if is_active else inactive).append(pk)
        return active, inactive
    return _candidates(event).route(
        event.type, channels=event.channels, data=event.data, limit=limit
    )


def _all_matching(event: Event) -> tuple[list, list]:
    matched = _matching(event)
    assert matched is not None  # no limit, so never "too many"
    return matched


def _repeat(event: Event, digest: str) -> Publication:
    # Events stored before body hashes existed have none: they cannot conflict.
    if event.body_hash and event.body_hash != digest:
        raise IdempotencyConflict(
            "This idempotency key was already used for another event type or data."
        )
    publication = Publication(event, created=False)
    try:
        publication.counted(*expected_counts(event))
    except DatabaseError:
        # The figures are a courtesy; the repeat itself must not fail (see published_body).
        logger.warning("event %s: its deliveries could not be counted", event.pk)
        event.delivery_count = event.skipped_count = None  # type: ignore[attr-defined]
    return publication


def _fan_out_after_commit(publication: Publication) -> None:
    event = publication.event
    try:
        matched = None
        if event.target_subscription_id is None:
            matched = _fan_out_in_background(publication)
            if matched is None:
                return
        publication.counted(*fan_out_counts(event.pk, matched=matched))
    except Exception:
        # The event is stored; the sweep fans it out later. Never fail the producer's request.
        logger.exception("fan-out of event %s failed; the sweep will retry it", event.pk)


def _fan_out_in_background(publication: Publication) -> tuple[list, list] | None:
    """Hand a large fan-out to a worker so that the producer's request answers at once; None
    when it did. A small one is matched here once, and its match returned for the inline
    fan-out: at most FAN_OUT_INLINE_MAX + 1 rows are read to tell which it is.

    For a large one the count of matching active subscriptions is still known (one counting
    query) and set as the publication's `deliveries`. If the message is lost, the sweep fans the
    event out later.
    """
    event = publication.event
    inline_max = int(webhook_settings.FAN_OUT_INLINE_MAX)
    matched = _matching(event, limit=inline_max)
    if matched is not None:
        return matched
    # Counted by the database (filters read and evaluated, narrow rows): the request must not
    # load every subscription to decide.
    publication.counted(*_count_routed(event))
    try:
        dispatch.send(dispatch.FAN_OUT, (str(event.pk),), queue=webhook_settings.MAINTENANCE_QUEUE)
    except BROKER_ERRORS as exc:
        logger.warning("broker unavailable; the sweep fans out event %s later: %s", event.pk, exc)
    return None


class _EarlierFirst(Exception):
    """Leaves a keyed event's fan-out transaction: earlier events of its key go first."""

    def __init__(self, event: Event) -> None:
        super().__init__(event.pk)
        self.event = event


def fan_out(
    event_id: Any, *, matched: tuple[list, list] | None = None, earlier_done: bool = False
) -> int:
    """`fan_out_counts`, answering the number of active deliveries only."""
    return fan_out_counts(event_id, matched=matched, earlier_done=earlier_done)[0]


@tracing.traced_fan_out
def fan_out_counts(
    event_id: Any, *, matched: tuple[list, list] | None = None, earlier_done: bool = False
) -> tuple[int, int]:
    """Create one delivery per matching subscription and enqueue the first attempts.

    Idempotent: a second run (the sweep racing the on-commit hook) creates no rows twice.
    Subscriptions that match but are disabled get a `skipped` delivery, so what they missed
    can be replayed when they are enabled again. `matched` (active ids, inactive ids) is a
    match the caller already made for this event, so it is not made twice. Returns the number
    of active deliveries and the number of skipped ones: (queued, skipped).

    A keyed event's earlier events whose fan-out has not run are fanned out first, in publish
    order, each in its own transaction with its own messages (`earlier_done`: done by this
    call's first pass): their deliveries exist before this event's. Keyed deliveries behind an
    unfinished earlier one of their subscription are created held (`services.ordering`).
    """
    now = clock.now()
    batch = int(webhook_settings.BATCH_SIZE)
    alias = working_alias()
    deliveries = Delivery.objects.using(alias)
    held: set = set()
    try:
        with transaction.atomic(using=alias):
            event = Event.objects.using(alias).select_for_update().filter(pk=event_id).first()
            if event is None:
                return 0, 0
            tracing.note_event(event)
            if event.fanned_out_at is not None:
                return expected_counts(event)
            key = event.ordering_key
            if key is not None and not earlier_done and ordering.has_earlier_unfanned(event):
                raise _EarlierFirst(event)
            active, inactive = matched if matched is not None else _all_matching(event)
            versions = delivery_versions(event, active + inactive)
            # An event reaches its own tenant's subscriptions only (a test event belongs to its
            # subscription's tenant); a broadcast's rows, and to be sure a targeted event's,
            # are filled in from their subscriptions by `bulk_create` (one query).
            targeted = event.broadcast or event.target_subscription_id
            tenant_key = "" if targeted else event.tenant_id or ""
            rows = [
                Delivery(
                    event_id=event.pk,
                    subscription_id=sub_id,
                    tenant_key=tenant_key,
                    status=DeliveryStatus.PENDING,
                    next_attempt_at=now,
                    created_at=now,
                    version=versions.get(sub_id),
                )
                for sub_id in active
            ]
            if key is not None:
                held = ordering.blocked_subscriptions(event, active, alias)
                for row in rows:
                    row.ordering_key, row.ordering_seq = key, event.ordering_seq
                    if row.subscription_id in held:
                        for name, value in ordering.held_fields().items():
                            setattr(row, name, value)
            rows += [
                Delivery(
                    event_id=event.pk,
                    subscription_id=sub_id,
                    tenant_key=tenant_key,
                    status=DeliveryStatus.SKIPPED,
                    last_error="Subscription disabled when the event was published.",
                    created_at=now,
                    version=versions.get(sub_id),
                    # A replay after enabling it again sends these in their key's order.
                    ordering_key=key,
                    ordering_seq=event.ordering_seq,
                )
                for sub_id in inactive
            ]
            deliveries.bulk_create(rows, batch_size=batch, ignore_conflicts=True)
            Event.objects.using(alias).filter(pk=event.pk).update(fanned_out_at=now)
            pending = deliveries.filter(
                event_id=event.pk, status=DeliveryStatus.PENDING, attempts=0
            )
            if held:
                pending = pending.filter(next_attempt_at__isnull=False)
            pending_ids = list(pending.values_list("pk", flat=True).order_by())
            by_tenant = _by_tenant(event, pending, pending_ids)
    except _EarlierFirst as first:
        ordering.fan_out_earlier(first.event, fan_out)
        return fan_out_counts(event_id, matched=matched, earlier_done=True)
    for tenant, ids in by_tenant.items():
        # Each tenant's share of the broker (services.fairness); the rest wait, due, here.
        if tenant:
            fairness.enqueue(tenant, ((pk, 1) for pk in ids))
        else:
            enqueue_attempts((pk, 1) for pk in ids)
    if held:
        # A head that ended while these holds were written released nothing: look again now.
        ordering.recheck(
            deliveries.filter(event_id=event.pk, subscription_id__in=held).values_list(
                "pk", flat=True
            )
        )
    return len(active), len(inactive)


def _by_tenant(event: Event, pending: Any, ids: list[int]) -> dict[str, list[int]]:
    """The first attempts to send, by the tenant whose share of the broker they take
    (services.fairness: a broadcast's deliveries by their subscription's tenant); all under ""
    when fairness is off."""
    if fairness.cap() is None:
        return {"": ids}
    if not event.broadcast:
        return {str(event.tenant_id): ids}
    by: dict[str, list[int]] = {}
    for pk, tenant in pending.values_list("pk", "subscription__tenant_id").order_by():
        by.setdefault(str(tenant), []).append(pk)
    return by
