"""The per-subscription cap on deliveries in flight, kept in the broker's Redis.

Each subscription has a sorted set `webhooks:inflight:<id>` of slot tokens scored by their
expiry time (Redis server clock). Taking a slot is one Lua script: drop expired tokens, add ours
if fewer than the cap remain. A worker killed mid-request cannot leak its slot for longer than
the lease (the attempt's total timeout plus a margin), because an expired token no longer counts.

With a broker that is not Redis the cap is off, and a warning says so once per process. If Redis
cannot be reached the delivery goes ahead uncapped: the cap protects other endpoints' latency,
it must never stop deliveries.
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass
from typing import Any

from subscriptions.models import Subscription

from ..conf import webhook_settings

logger = logging.getLogger(__name__)

KEY_PREFIX = "webhooks:inflight:"

# KEYS[1] the set; ARGV: cap, lease in ms, token. Returns 1 if the slot was taken.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return 1
"""

# Errors from redis-py and sockets: the cap is skipped, the delivery is not.
try:
    from redis.exceptions import RedisError as _RedisError
except ImportError:  # pragma: no cover - redis is a dependency of celery[redis]
    _RedisError = OSError  # type: ignore[assignment,misc]
REDIS_ERRORS: tuple[type[BaseException], ...] = (_RedisError, OSError)


@dataclass
class Slot:
    """A taken slot; `release()` frees it (idempotent). A no-op slot when the cap is off."""

    key: str = ""
    token: str = ""
    client: Any = None

    def release(self) -> None:
        if self.client is None:
            return
        client, self.client = self.client, None
        try:
            client.zrem(self.key, self.token)
        except REDIS_ERRORS as exc:
            logger.warning("in-flight slot %s not released (it expires): %s", self.key, exc)


UNCAPPED = Slot()


class _State:
    def __init__(self) -> None:
        self.pid = 0
        self.url: str | None = None
        self.client: Any = None
        self.script: Any = None
        self.warned = False


_state = _State()


def _broker_url() -> str:
    from celery import current_app

    url = current_app.conf.broker_url or ""
    if isinstance(url, (list, tuple)):
        url = url[0] if url else ""
    return str(url).split(";")[0].strip()


def _client() -> tuple[Any, Any] | None:
    """The redis-py client on the broker's Redis (one per process), or None if not Redis."""
    url = _broker_url()
    if _state.pid == os.getpid() and _state.url == url:
        return (_state.client, _state.script) if _state.client is not None else None
    _state.pid, _state.url, _state.client, _state.script = os.getpid(), url, None, None
    if url.startswith("redis+socket://"):
        url = "unix://" + url[len("redis+socket://") :]
    if not url.startswith(("redis://", "rediss://", "unix://")):
        if not _state.warned:
            _state.warned = True
            logger.warning(
                "broker %s is not Redis: the per-subscription in-flight cap (MAX_IN_FLIGHT, "
                "Subscription.rate_limit) is off",
                url.split("://")[0] or "(none)",
            )
        return None
    import redis
    from celery import current_app

    options = current_app.conf.broker_transport_options or {}
    _state.client = redis.Redis.from_url(
        url,
        socket_connect_timeout=options.get("socket_connect_timeout", 2),
        socket_timeout=options.get("socket_timeout", 5),
    )
    _state.script = _state.client.register_script(_ACQUIRE)
    return _state.client, _state.script


def limit_for(subscription: Subscription) -> int | None:
    """The cap for this subscription: its own `rate_limit`, else MAX_IN_FLIGHT (None: no cap)."""
    if subscription.rate_limit:
        return int(subscription.rate_limit)
    default = webhook_settings.MAX_IN_FLIGHT
    return int(default) if default else None


def lease_ms() -> int:
    # `send` is cut at TIMEOUT by its watchdog; the margin covers signing and recording.
    return int((float(webhook_settings.TIMEOUT) + 5) * 1000)


def acquire(subscription: Subscription) -> Slot | None:
    """Take an in-flight slot for `subscription`; None when it is at its cap.

    Returns a no-op slot when there is no cap (none configured, broker not Redis, Redis down).
    """
    limit = limit_for(subscription)
    if limit is None:
        return UNCAPPED
    found = _client()
    if found is None:
        return UNCAPPED
    client, script = found
    key = f"{KEY_PREFIX}{subscription.pk}"
    token = uuid.uuid4().hex
    try:
        taken = script(keys=[key], args=[limit, lease_ms(), token])
    except REDIS_ERRORS as exc:
        logger.warning("in-flight cap skipped, Redis unavailable: %s", exc)
        return UNCAPPED
    return Slot(key, token, client) if taken else None


def in_flight(subscription_id: object) -> int:
    """Slots currently held for a subscription (expired ones included until the next acquire)."""
    found = _client()
    if found is None:
        return 0
    return int(found[0].zcard(f"{KEY_PREFIX}{subscription_id}"))
