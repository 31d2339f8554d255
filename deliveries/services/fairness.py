"""Fair dispatch between tenants: at most TENANT_MAX_QUEUED messages of one tenant in the broker
at once; the rest wait, due, in the database, and are released in due order as that tenant's
messages end (and by the sweep).

Why not the broker alone: the `webhooks` queue is one FIFO for every tenant, so one tenant's
20,000 first attempts to refusing endpoints made another tenant's fresh event wait minutes, and
every countdown retry sat as an ETA message in worker memory (the in-flight caps never engaged:
a refused connection holds a slot for milliseconds). Per-tenant queues served round-robin
would need every worker to learn every tenant's queue as tenants come and go (Celery consumes
a fixed list), and would still keep each tenant's whole backlog in the broker and its retries
in worker memory. Here the database, already the source of truth (every waiting delivery has a
`next_attempt_at`), holds the backlog: a fresh event of any tenant waits behind at most
TENANT_MAX_QUEUED messages of each other busy tenant, whatever their backlogs, and a worker
holds at most that many ETA messages per tenant.

Bookkeeping, in the counters' Redis (`WEBHOOKS["REDIS_URL"]`):
- `webhooks:queued:<tenant>`: a sorted set of the delivery ids whose message is out (in the
  broker, in a worker, or waiting as a countdown retry), scored by a lease end (ms, Redis
  clock). A message lost with its worker frees its place when the lease ends (QUEUED_LEASE).
- `webhooks:held:<tenant>`: set while the tenant has due deliveries held in the database.
- `webhooks:refill:<tenant>`: a short lock, so that one worker at a time refills a tenant.

`admit` adds ids to the set up to the cap (one round trip per batch) and says which may be
sent; `settle` takes an id out when its message chain ends (the attempt finished, was parked
in the database, or found nothing to do) and, when the tenant has held deliveries and room for
a batch, `refill` sends the oldest due ones. Messages sent outside this module (a manual retry,
a replay, the sweep's release of a dead worker's claim) are not counted: they are few.

Off (today's single FIFO) when TENANT_MAX_QUEUED is None, when there is no Redis for the
counters or it is down (nothing is held back then: fairness must never stop deliveries), and
under `task_always_eager`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Iterable, Sequence

from celery import current_app

from ..conf import webhook_settings
from ..dispatch import enqueue_attempts
from ..models import WAITING, Delivery
from . import clock, inflight
from .connections import working_alias

logger = logging.getLogger(__name__)

QUEUED_PREFIX = "webhooks:queued:"
HELD_PREFIX = "webhooks:held:"
REFILL_PREFIX = "webhooks:refill:"

# Seconds a counted message keeps its place without news of it: well past the longest
# countdown (MAX_COUNTDOWN, at most half the visibility timeout) plus a wait in the queue.
QUEUED_LEASE = 600
# Seconds one worker holds a tenant's refill lock (released when its refill ends).
REFILL_LOCK = 10

# KEYS: the tenant's set, its held flag. ARGV: cap, lease ms, then delivery ids.
# Returns the ids admitted (not yet in the set, and within the cap); sets the held flag when
# some were left out for want of room.
_ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local room = tonumber(ARGV[1]) - redis.call('ZCARD', KEYS[1])
local admitted = {}
for i = 3, #ARGV do
  if room <= 0 then
    redis.call('SET', KEYS[2], '1', 'EX', 86400)
    break
  end
  if redis.call('ZADD', KEYS[1], 'NX', now + lease, ARGV[i]) == 1 then
    admitted[#admitted + 1] = ARGV[i]
    room = room - 1
  end
end
redis.call('PEXPIRE', KEYS[1], lease * 2)
return admitted
"""

# KEYS: the tenant's set, held flag, refill lock, then the in-flight sets of the attempt's slot
# (`inflight.Slot.hand_over`). ARGV: the id whose chain ended, cap, the least room worth a
# refill, lock ms, the slot's token. Returns the room to refill (0: nothing to do now).
_SETTLE = """
for i = 4, #KEYS do
  redis.call('ZREM', KEYS[i], ARGV[5])
end
redis.call('ZREM', KEYS[1], ARGV[1])
if redis.call('EXISTS', KEYS[2]) == 0 then
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local room = tonumber(ARGV[2]) - redis.call('ZCARD', KEYS[1])
if room < tonumber(ARGV[3]) then
  return 0
end
if redis.call('SET', KEYS[3], '1', 'NX', 'PX', tonumber(ARGV[4])) then
  return room
end
return 0
"""


class _Scripts:
    def __init__(self) -> None:
        self.client: object = None
        self.admit: object = None
        self.settle: object = None


_scripts = _Scripts()


def cap() -> int | None:
    """Most messages of one tenant out at once (TENANT_MAX_QUEUED); None when fairness is off."""
    value = webhook_settings.TENANT_MAX_QUEUED
    if not value or current_app.conf.task_always_eager:
        return None
    return int(value)


def _client() -> tuple[object, object, object] | None:
    client = inflight.redis_client()
    if client is None:
        return None
    if _scripts.client is not client:
        _scripts.client = client
        _scripts.admit = client.register_script(_ADMIT)
        _scripts.settle = client.register_script(_SETTLE)
    return client, _scripts.admit, _scripts.settle


def _keys(tenant: str) -> list[str]:
    return [f"{QUEUED_PREFIX}{tenant}", f"{HELD_PREFIX}{tenant}", f"{REFILL_PREFIX}{tenant}"]


def admit(tenant: str, delivery_ids: Sequence[int]) -> list[int]:
    """The ids of `delivery_ids` (in order) that tenant `tenant` may send now: not already
    out, and within its cap. The others stay due in the database; the tenant is marked as
    holding some, so its next settled message refills. All of them when fairness is off."""
    limit = cap()
    if limit is None or not delivery_ids:
        return list(delivery_ids)
    found = _client()
    if found is None:
        return list(delivery_ids)
    keys = _keys(tenant)
    try:
        admitted = found[
            1
        ](  # type: ignore[operator]
            keys=keys[:2], args=[limit, QUEUED_LEASE * 1000, *delivery_ids]
        )
    except inflight.REDIS_ERRORS as exc:
        logger.warning("fair dispatch skipped, Redis unavailable: %s", exc)
        return list(delivery_ids)
    return [int(pk) for pk in admitted]


def enqueue(tenant: str, items: Iterable[tuple[int, int]]) -> int:
    """Send the `(delivery_id, attempt)` items of tenant `tenant` that `admit` lets through,
    counted for the tenant; returns how many were sent. The rest wait in the database."""
    wanted = dict(items)
    admitted = admit(tenant, list(wanted))
    counted = tenant if cap() is not None else None
    return enqueue_attempts(((pk, wanted[pk]) for pk in admitted), tenant=counted)


def settle(tenant: str | None, delivery_id: int, slot: inflight.Slot | None = None) -> int:
    """The message chain of `delivery_id` ended (finished, parked in the database, or nothing
    to do): free its place, and refill the tenant from the database when it holds deliveries
    back and a batch fits. Returns how many messages the refill sent.

    `slot` is the attempt's in-flight slot, freed in the same round trip; with no `tenant` (a
    message not counted for one, or a chain that carries on) only the slot is freed.
    """
    limit = cap() if tenant is not None else None
    found = _client() if limit is not None else None
    if tenant is None or limit is None or found is None:  # only the slot to free
        if slot is not None:
            slot.release()
        return 0
    slot_keys, token = slot.hand_over() if slot is not None else ([], "")
    keys = _keys(tenant)
    try:
        room = int(
            found[2](  # type: ignore[operator]
                keys=[*keys, *slot_keys],
                args=[delivery_id, limit, refill_batch(limit), REFILL_LOCK * 1000, token],
            )
        )
    except inflight.REDIS_ERRORS as exc:
        logger.warning("fair dispatch: place of delivery %s not freed: %s", delivery_id, exc)
        return 0
    if room <= 0:
        return 0
    return refill(tenant, room, clock.now(), locked=True)


def refill_batch(limit: int) -> int:
    """The least room worth a refill query: a quarter of the cap, so a busy tenant costs one
    query per that many messages."""
    return max(1, limit // 4)


def refill(tenant: str, room: int, before: dt.datetime, *, locked: bool = False) -> int:
    """Send up to `room` of tenant `tenant`'s due deliveries (due at or before `before`,
    oldest first) whose message is not out; returns how many were sent. With `locked`, the
    caller holds the tenant's refill lock, released here."""
    found = _client()
    if found is None:
        return 0
    client = found[0]
    keys = _keys(tenant)
    try:
        # Cleared first: a fan-out that holds deliveries back meanwhile sets it again.
        client.delete(keys[1])  # type: ignore[attr-defined]
        out = [int(m) for m in client.zrange(keys[0], 0, -1)]  # type: ignore[attr-defined]
        due = list(
            Delivery.objects.using(working_alias())
            .filter(
                subscription__tenant_id=tenant,
                status__in=WAITING,
                next_attempt_at__lte=before,
            )
            .exclude(pk__in=out)
            .order_by("next_attempt_at", "pk")
            .values_list("pk", "attempts")[:room]
        )
        sent = enqueue(tenant, ((pk, attempts + 1) for pk, attempts in due))
        if len(due) >= room:
            client.set(keys[1], "1", ex=86400)  # type: ignore[attr-defined]
        return sent
    except inflight.REDIS_ERRORS as exc:
        logger.warning("fair dispatch: tenant %s not refilled: %s", tenant, exc)
        return 0
    finally:
        if locked:
            # On an error the lock ends by itself (REFILL_LOCK).
            with contextlib.suppress(*inflight.REDIS_ERRORS):
                client.delete(keys[2])  # type: ignore[attr-defined]


def sweep(before: dt.datetime, *, limit_tenants: int = 1000) -> int:
    """The sweep's fair pass: for each tenant with deliveries due at or before `before`
    (SWEEP_GRACE ago), send its oldest due ones up to its free room. Returns how many were
    sent; 0 when fairness is off (the sweep then sends due rows by itself)."""
    limit = cap()
    found = _client() if limit is not None else None
    if limit is None or found is None:
        return 0
    tenants = (
        Delivery.objects.using(working_alias())
        .due(before)
        .values_list("subscription__tenant_id", flat=True)
        .distinct()
        .order_by()[:limit_tenants]
    )
    sent = 0
    for tenant in list(tenants):
        try:
            out = int(found[0].zcard(f"{QUEUED_PREFIX}{tenant}"))  # type: ignore[attr-defined]
        except inflight.REDIS_ERRORS:
            return sent
        if out < limit:
            sent += refill(str(tenant), limit - out, before)
    return sent


def queued(tenant: str) -> int:
    """Messages of tenant `tenant` counted as out now (expired places included until the next
    admission)."""
    found = _client()
    return int(found[0].zcard(f"{QUEUED_PREFIX}{tenant}")) if found else 0  # type: ignore[attr-defined]
