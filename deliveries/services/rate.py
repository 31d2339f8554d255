"""A per-endpoint rate in events per second, shared by every worker (shared/DESIGN.md, "Rate").

The rate is a GCRA (generic cell rate algorithm) kept in the counters' Redis
(`WEBHOOKS["REDIS_URL"]`), checked in the same Lua script and round trip as the in-flight slot
(`inflight.take`): one key per endpoint holds its theoretical arrival time (TAT, ms on the
Redis server's clock). A request conforms when `TAT - tolerance <= now`; sending moves the TAT
one emission interval (1000 / rate ms) on. The tolerance is `interval * (burst - 1)` with a
burst of `max(1, floor(rate))`: at most one second's worth at once, one event for rates under
1/s.

A delivery over the rate is not sent and spends no attempt: it is told how long to wait and
comes back as the same attempt (`attempts._defer`). So that a backlog of waiting deliveries
does not all wake at once, the script hands each refused delivery its own turn: a second key
(the schedule frontier) moves one interval on per refusal, and each waiter comes back at its
turn. Waiters are only a schedule: whoever comes back is checked against the TAT again, so the
rate holds whatever the waiters do.

A 429 answer with Retry-After pauses the endpoint for that period, for every worker (a third
key, the hold, with the time it ends): during it the endpoint's rate is zero, and its
deliveries wait as above. With no Redis for the counters, the rate (like the caps) is skipped
and a system check says so: it protects the receiver, it never stops deliveries.

Rates are resolved per endpoint: its `max_rate`, else its tenant's `max_rate`, else
`WEBHOOKS["MAX_RATE"]` (None: no rate).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from subscriptions.models import Subscription

logger = logging.getLogger(__name__)

TAT_PREFIX = "webhooks:rate:tat:"
SCHEDULE_PREFIX = "webhooks:rate:next:"
HOLD_PREFIX = "webhooks:rate:hold:"

# A 429's pause is at most this long (seconds), as a Retry-After delay is (attempts.py).
MAX_HOLD = 86400

# KEYS: the hold. ARGV: the pause in ms. Keeps the later of the pause already there and this
# one; the value is the pause's end on the Redis server's clock (ms).
HOLD_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ms = tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if now + ms > current then
  redis.call('SET', KEYS[1], string.format('%.0f', now + ms), 'PX', ms)
end
return ms
"""


@dataclass(frozen=True)
class Plan:
    """What the acquire script needs for one endpoint's rate: its keys (hold, TAT, schedule)
    and its emission interval and tolerance in ms (0, 0: no rate, only the hold applies)."""

    keys: tuple[str, str, str]
    interval_ms: float
    tolerance_ms: float

    @property
    def args(self) -> list[str]:
        return [f"{self.interval_ms:.3f}", f"{self.tolerance_ms:.3f}"]


def plan(subscription_id: object, per_second: float | None) -> Plan:
    """The rate plan of an endpoint at `per_second` events per second (None: none)."""
    keys = (
        f"{HOLD_PREFIX}{subscription_id}",
        f"{TAT_PREFIX}{subscription_id}",
        f"{SCHEDULE_PREFIX}{subscription_id}",
    )
    if not per_second or per_second <= 0:
        return Plan(keys, 0.0, 0.0)
    interval = 1000.0 / float(per_second)
    burst = max(1, math.floor(per_second))  # at most one second's worth (DESIGN.md, "Rate")
    return Plan(keys, interval, interval * (burst - 1))


def rate_for(subscription: Subscription) -> float | None:
    """Events per second allowed to `subscription`: its own `max_rate`, else its tenant's
    default (`Tenant.rate_default`: its `max_rate`, else MAX_RATE; cached in this process for
    `inflight.TENANT_LIMIT_TTL` seconds); None for no rate."""
    own = getattr(subscription, "max_rate", None)
    if own:
        return float(own)
    from . import inflight  # the tenant row cache lives with the tenant's cap

    return inflight.tenant_limits(str(subscription.tenant_id)).rate


def hold_for(subscription_id: object, seconds: float) -> bool:
    """Pause the endpoint for `seconds` (a 429's Retry-After, clamped to MAX_HOLD) for every
    worker. Returns False when there is no Redis for the counters or it is down (the delivery
    that got the 429 still waits its Retry-After: its own retry honours it)."""
    from . import inflight

    ms = int(min(max(seconds, 0.0), MAX_HOLD) * 1000)
    if ms <= 0:
        return False
    client = inflight.redis_client()
    if client is None:
        return False
    try:
        client.eval(HOLD_SCRIPT, 1, f"{HOLD_PREFIX}{subscription_id}", ms)
    except inflight.REDIS_ERRORS as exc:
        logger.warning(
            "endpoint %s: 429 pause not shared, Redis unavailable: %s", subscription_id, exc
        )
        return False
    return True


def held_until_ms(subscription_id: object) -> int:
    """The end of the endpoint's 429 pause (ms on the Redis clock), 0 when none."""
    from . import inflight

    client = inflight.redis_client()
    if client is None:
        return 0
    value = client.get(f"{HOLD_PREFIX}{subscription_id}")
    return int(float(value)) if value else 0
