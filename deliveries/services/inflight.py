"""The caps on deliveries in flight, per subscription and per tenant, kept in the counters' Redis
(`WEBHOOKS["REDIS_URL"]`, by default the broker's when it is Redis).

Each subscription has a sorted set `webhooks:inflight:<id>` of slot tokens scored by their
expiry time (Redis server clock), and each tenant one, `webhooks:inflight:tenant:<key>`, holding
the tokens of all its endpoints. Taking a slot is one Lua script: drop expired tokens, and add
ours to both sets only if both are under their caps. The tenant cap is what keeps one tenant's
hanging endpoints from taking every worker slot (`TENANT_MAX_IN_FLIGHT`). A worker killed
mid-request cannot leak its slot for longer than the lease (the attempt's total timeout plus a
margin), because an expired token no longer counts.

With no Redis for the counters, system check webhooks.E030 is an error and a process that runs
anyway logs an error once. If Redis cannot be reached the delivery goes ahead uncapped: the cap
protects other endpoints' latency, it must never stop deliveries.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import RedisError

from subscriptions.models import Subscription, Tenant

from ..conf import celery_broker_url, is_redis_url, webhook_settings

logger = logging.getLogger(__name__)

KEY_PREFIX = "webhooks:inflight:"
TENANT_KEY_PREFIX = "webhooks:inflight:tenant:"

# KEYS: the endpoint's rate keys (hold, TAT, schedule: `rate.Plan`), then the cap sets
# (subscription, then tenant). ARGV: lease in ms, token, the rate's interval and tolerance in
# ms (0: no rate), then one cap per set (-1: no cap on that set).
# Returns {1, 0, ''} if the slot was taken in every set and the rate allowed it (then the rate
# is spent); else {0, wait in ms, why}: 'retry_after' (a 429 pause, wait until it ends), 'rate'
# (wait for this delivery's turn, see rate.py) or 'cap' (no wait known: the caller backs off).
# The rate is checked before the caps and spent only with a slot: a delivery refused by a cap
# costs the endpoint no rate.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local hold = tonumber(redis.call('GET', KEYS[1]) or '0')
if hold > now then
  return {0, hold - now, 'retry_after'}
end
local interval = tonumber(ARGV[3])
local tat = now
if interval > 0 then
  tat = math.max(tonumber(redis.call('GET', KEYS[2]) or '0'), now)
  local allowed_at = tat - tonumber(ARGV[4])
  if allowed_at > now then
    local turn = math.max(tonumber(redis.call('GET', KEYS[3]) or '0'), allowed_at)
    local ttl = math.ceil(turn + interval - now) + 1000
    redis.call('SET', KEYS[3], string.format('%.3f', turn + interval), 'PX', ttl)
    return {0, math.ceil(turn - now), 'rate'}
  end
end
for i = 4, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
  local cap = tonumber(ARGV[i + 1])
  if cap >= 0 and redis.call('ZCARD', KEYS[i]) >= cap then
    return {0, 0, 'cap'}
  end
end
for i = 4, #KEYS do
  redis.call('ZADD', KEYS[i], now + tonumber(ARGV[1]), ARGV[2])
  redis.call('PEXPIRE', KEYS[i], tonumber(ARGV[1]) * 2)
end
if interval > 0 then
  local ttl = math.ceil(tat + interval - now) + 1000
  redis.call('SET', KEYS[2], string.format('%.3f', tat + interval), 'PX', ttl)
end
return {1, 0, ''}
"""

# KEYS: the sets the slot was taken in; ARGV: its token. Freeing a slot is this one command,
# one round trip (a pipeline of ZREMs costs more CPU in redis-py for the same round trip).
_RELEASE = """
for _, key in ipairs(KEYS) do
  redis.call('ZREM', key, ARGV[1])
end
return 1
"""

# Seconds a tenant's in-flight cap is kept in a worker's memory: reading the Tenant row on
# every attempt would add a query to the hot path. A changed limit applies within this time.
TENANT_LIMIT_TTL = 30.0

# Errors from redis-py and sockets: the cap is skipped, the delivery is not.
REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError)


@dataclass(frozen=True)
class Refusal:
    """Why a delivery may not be sent now: `reason` is a `WaitReason` value (`rate`,
    `retry_after`) or "cap" (an in-flight cap: which one is `refusal_reason`'s to say), and
    `wait` the seconds until the endpoint's rate or pause lets it go (0 for a cap)."""

    reason: str
    wait: float = 0.0


@dataclass(frozen=True)
class TenantLimits:
    """A tenant's limits as the pipeline applies them: its in-flight cap and its endpoints'
    default rate (None: none)."""

    cap: int | None
    rate: float | None


@dataclass
class Slot:
    """A taken slot (in one set per cap); `release()` frees it (idempotent). A no-op slot when
    no cap applies."""

    keys: list[str] = field(default_factory=list)
    token: str = ""
    client: Any = None  # the release script, bound to the client the slot was taken on

    def release(self) -> None:
        if self.client is None:
            return
        script, self.client = self.client, None
        try:
            script(keys=self.keys, args=[self.token])
        except REDIS_ERRORS as exc:
            logger.warning("in-flight slot %s not released (it expires): %s", self.keys, exc)

    def hand_over(self) -> tuple[list[str], str]:
        """The sets and token to free, for a caller that frees them in its own script (one
        round trip for the slot and its other bookkeeping: `fairness.settle`); the slot is then
        released as far as this object goes. ([], "") when there is nothing to free."""
        if self.client is None:
            return [], ""
        self.client = None
        return self.keys, self.token


UNCAPPED = Slot()


class _State:
    def __init__(self) -> None:
        self.pid = 0
        self.url: str | None = None
        self.client: Any = None
        self.script: Any = None
        self.release: Any = None
        self.warned = False
        # Tenant key → (its limits, monotonic expiry).
        self.tenant_limits: dict[str, tuple[TenantLimits, float]] = {}


_state = _State()


def _client() -> tuple[Any, Any] | None:
    """The redis-py client on the counters' Redis (`webhook_settings.redis_url`: REDIS_URL, or
    the broker's when it is Redis), one per process; None when there is none."""
    url = webhook_settings.redis_url
    if _state.pid == os.getpid() and _state.url == url:
        return (_state.client, _state.script) if _state.client is not None else None
    _state.pid, _state.url, _state.client, _state.script = os.getpid(), url, None, None
    if url is None:
        if not _state.warned:
            # System check webhooks.E030 stops processes that run checks; this is for the rest.
            _state.warned = True
            logger.error(
                "no Redis for the in-flight counters (WEBHOOKS['REDIS_URL'] unset and the broker "
                "is not Redis): in-flight caps are not applied"
            )
        return None
    import redis
    from celery import current_app

    options = current_app.conf.broker_transport_options or {}
    if not is_redis_url(celery_broker_url()):
        options = {}  # another broker's options (RabbitMQ's) say nothing of this Redis
    _state.client = redis.Redis.from_url(
        url,
        socket_connect_timeout=options.get("socket_connect_timeout", 2),
        socket_timeout=options.get("socket_timeout", 5),
    )
    _state.script = _state.client.register_script(_ACQUIRE)
    _state.release = _state.client.register_script(_RELEASE)
    return _state.client, _state.script


def redis_client() -> Any:
    """The counters' redis-py client of this process, or None when there is no Redis for them."""
    found = _client()
    return found[0] if found is not None else None


def limit_for(subscription: Subscription) -> int | None:
    """The cap for this subscription: its own `max_in_flight`, else MAX_IN_FLIGHT (None: no
    cap)."""
    if subscription.max_in_flight:
        return int(subscription.max_in_flight)
    default = webhook_settings.MAX_IN_FLIGHT
    return int(default) if default else None


def tenant_limit(key: str) -> int | None:
    """The in-flight cap of tenant `key` (its row's `max_in_flight`, else TENANT_MAX_IN_FLIGHT;
    None: no cap), kept TENANT_LIMIT_TTL seconds in this process."""
    return tenant_limits(key).cap


def tenant_limits(key: str) -> TenantLimits:
    """Tenant `key`'s in-flight cap and default endpoint rate, read from its row (one query)
    and kept TENANT_LIMIT_TTL seconds in this process."""
    now = time.monotonic()
    cached = _state.tenant_limits.get(key)
    if cached is not None and cached[1] > now:
        return cached[0]
    row = Tenant.objects.filter(pk=key).values_list("max_in_flight", "max_rate").first()
    override, rate = row if row is not None else (None, None)
    row_as_read = Tenant(key=key, max_in_flight=override, max_rate=rate)
    limits = TenantLimits(row_as_read.in_flight_limit, row_as_read.rate_default)
    if len(_state.tenant_limits) > 10_000:  # bounded, whatever the number of tenants
        _state.tenant_limits.clear()
    _state.tenant_limits[key] = (limits, now + TENANT_LIMIT_TTL)
    return limits


def forget_tenant_limits() -> None:
    """Drop this process's cached tenant caps (after changing one, in tests)."""
    _state.tenant_limits.clear()


def lease_ms() -> int:
    # `send` is cut at TIMEOUT by its watchdog; the margin covers signing and recording.
    return int((float(webhook_settings.TIMEOUT) + 5) * 1000)


def acquire(subscription: Subscription) -> Slot | None:
    """Take an in-flight slot for `subscription` and its tenant; None when either is at its cap
    or the endpoint's rate (or a 429 pause) holds it back (`take` says which, and how long).

    Returns a no-op slot when there is no cap (none configured, no Redis for the counters, that
    Redis down).
    """
    taken = take(subscription)
    return taken if isinstance(taken, Slot) else None


def take(subscription: Subscription) -> Slot | Refusal:
    """Take an in-flight slot for `subscription` and its tenant and spend one event of the
    endpoint's rate (`rate.rate_for`), all or nothing, in one Redis round trip; or say why not
    (`Refusal`). A 429 pause (`rate.hold_for`) refuses every delivery of the endpoint until it
    ends.

    Returns a no-op slot when nothing applies (no cap and no rate configured, no Redis for the
    counters, that Redis down): caps and rates protect, they never stop deliveries.
    """
    from . import rate

    caps = [
        (f"{KEY_PREFIX}{subscription.pk}", limit_for(subscription)),
        (f"{TENANT_KEY_PREFIX}{subscription.tenant_id}", tenant_limit(str(subscription.tenant_id))),
    ]
    caps = [(key, cap) for key, cap in caps if cap is not None]
    per_second = rate.rate_for(subscription)
    if not caps and per_second is None:
        return UNCAPPED
    found = _client()
    if found is None:
        return UNCAPPED
    _unused, script = found
    plan = rate.plan(subscription.pk, per_second)
    keys = [*plan.keys, *(key for key, _cap in caps)]
    token = uuid.uuid4().hex
    try:
        taken, wait_ms, why = script(
            keys=keys, args=[lease_ms(), token, *plan.args, *(cap for _key, cap in caps)]
        )
    except REDIS_ERRORS as exc:
        logger.warning("in-flight cap skipped, Redis unavailable: %s", exc)
        return UNCAPPED
    if taken:
        return Slot(keys[3:], token, _state.release) if caps else UNCAPPED
    reason = why.decode() if isinstance(why, bytes) else str(why)
    return Refusal(reason, max(0, int(wait_ms)) / 1000)


def in_flight(subscription_id: object) -> int:
    """Slots currently held for a subscription (expired ones included until the next acquire)."""
    return _count(f"{KEY_PREFIX}{subscription_id}")


def tenant_in_flight(key: str) -> int:
    """Slots currently held by all of a tenant's endpoints (expired ones included until the
    next acquire)."""
    return _count(f"{TENANT_KEY_PREFIX}{key}")


def _count(key: str) -> int:
    found = _client()
    if found is None:
        return 0
    return int(found[0].zcard(key))


def refusal_reason(subscription: Subscription) -> str:
    """Which cap refused `subscription` a slot just now: its own (`WaitReason.ENDPOINT_CAP`)
    or its tenant's (`TENANT_CAP`). Read after the refusal, so it names the endpoint's cap when
    that one is full, else the tenant's."""
    from ..models import WaitReason

    limit = limit_for(subscription)
    if limit is not None and in_flight(subscription.pk) >= limit:
        return WaitReason.ENDPOINT_CAP
    if tenant_limit(str(subscription.tenant_id)) is None:
        return WaitReason.ENDPOINT_CAP
    return WaitReason.TENANT_CAP
