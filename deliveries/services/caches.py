"""Per-process caches of the rows every publish would otherwise read again: event-type schemas
and tenants.

Each entry is dropped when its row is saved or deleted in this process (receivers connected in
`DeliveriesConfig.ready()`), and after `TTL` seconds in any case, so a change made by another
process applies within that time. Bounded: past `MAX_ENTRIES` a cache starts afresh.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from subscriptions.models import EventType, Tenant

from .connections import working_alias

# Seconds an entry is trusted when its row changed in another process.
TTL = 60.0
MAX_ENTRIES = 10_000

_lock = threading.Lock()
_schemas: dict[str, tuple[Any, float]] = {}
_tenants: dict[str, tuple[str, float]] = {}


def _get(cache: dict[str, tuple[Any, float]], key: str) -> tuple[bool, Any]:
    found = cache.get(key)
    if found is not None and found[1] > time.monotonic():
        return True, found[0]
    return False, None


def _put(cache: dict[str, tuple[Any, float]], key: str, value: Any) -> None:
    with _lock:
        if len(cache) >= MAX_ENTRIES:
            cache.clear()
        cache[key] = (value, time.monotonic() + TTL)


def event_schema(name: str) -> dict[str, Any] | None:
    """The JSON Schema of event type `name`, or None (no schema, or no such type)."""
    hit, value = _get(_schemas, name)
    if hit:
        return value
    types = EventType.objects.using(working_alias())
    schema = types.filter(name=name).values_list("schema", flat=True).first()
    _put(_schemas, name, schema or None)
    return schema or None


def tenant_key(key: str) -> str:
    """The key of tenant `key`, its row created on first use (`Tenant.objects.for_key`).

    Raises django.core.exceptions.ValidationError for a malformed key (never cached)."""
    hit, value = _get(_tenants, key)
    if hit:
        return str(value)
    found = Tenant.objects.db_manager(working_alias()).for_key(key).pk
    _put(_tenants, key, found)
    return str(found)


def forget_event_type(sender: type, instance: EventType, **kwargs: Any) -> None:
    """`post_save` / `post_delete` of an EventType: every schema is dropped (a renamed type's
    old name is not known here; event types change rarely)."""
    with _lock:
        _schemas.clear()


def forget_tenant(sender: type, instance: Tenant, **kwargs: Any) -> None:
    """`post_save` / `post_delete` of a Tenant."""
    with _lock:
        _tenants.pop(instance.pk, None)


def clear() -> None:
    """Drop every entry (tests, settings changes)."""
    with _lock:
        _schemas.clear()
        _tenants.clear()
