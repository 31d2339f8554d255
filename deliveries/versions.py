"""Event versions on the publishing side: an event of a type declared in code is stored in its
latest version with every older version rendered beside it, and each delivery records the
version its subscription is pinned to (docs/contracts.md)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

from django.db import router

from subscriptions.catalog import pinned_version, version_history
from subscriptions.contracts import ContractError, contracts, schema_error
from subscriptions.models import Subscription
from webhooks_core.conf import webhook_settings as registry_settings

from .models import Event
from .payloads import versioned_data

logger = logging.getLogger(__name__)

# Subscriptions read per query when resolving pins (well under SQLite's parameter limit).
PIN_CHUNK = 2000


def serialize_event(event_type: str, instance_or_data: Any) -> Any:
    """The data to publish: for a type declared in code, `instance_or_data` serialized through
    its latest version's serializer (a dict is taken as that serializer's output); for any
    other type, `instance_or_data` untouched (validated later as ever)."""
    if not contracts.is_declared(event_type):
        return instance_or_data
    return contracts.serialize(event_type, instance_or_data)


def render_versions(event_type: str, data: Any) -> tuple[int | None, dict[str, dict[str, Any]]]:
    """(the latest version, every older version's data keyed by its number as a string) of
    valid latest-version `data`; (None, {}) for a type not declared in code.

    Each older version is rendered by the down-converters and checked against its own schema.
    A mismatch raises ContractError when `WEBHOOKS["DOWNGRADE_ERRORS"]` is "raise", else is
    logged (the output is sent as it is). A missing or failing converter always raises
    ContractError: no payload can be made for that version.
    """
    latest = contracts.latest(event_type)
    if latest is None:
        return None, {}
    renditions: dict[str, dict[str, Any]] = {}
    for entry in contracts.versions(event_type):
        if entry.version >= latest.version:
            continue
        rendition = contracts.render(event_type, data, latest.version, entry.version)
        problem = schema_error(rendition, entry.schema)
        if problem:
            message = f"{event_type}: the down-converter's output for v{entry.version} {problem}"
            if registry_settings.DOWNGRADE_ERRORS == "raise":
                raise ContractError(message)
            logger.error("%s; sent as it is", message)
        renditions[str(entry.version)] = rendition
    return latest.version, renditions


def delivery_versions(event: Event, subscription_ids: Sequence[Any]) -> dict[Any, int]:
    """Subscription id -> the version its delivery of `event` sends ({} if unversioned).

    Each subscription's pin (`catalog.pinned_version`), as far as the event can be sent in it
    (`payloads.versioned_data`): a pin newer than the event gets the event's own version.
    """
    if event.version is None or not subscription_ids:
        return {}
    using = router.db_for_write(Subscription)
    history: list[tuple[int, dt.datetime]] = version_history(event.type, using=using)
    if not history:
        # Declared after the last migrate: no catalog rows yet, so pins (or the latest) decide.
        since = dt.datetime.min.replace(tzinfo=dt.UTC)
        history = [(entry.version, since) for entry in contracts.versions(event.type)]
    versions: dict[Any, int] = {}
    rows = Subscription.objects.using(using).order_by()
    for start in range(0, len(subscription_ids), PIN_CHUNK):
        chunk = subscription_ids[start : start + PIN_CHUNK]
        for pk, pins, created_at in rows.filter(pk__in=chunk).values_list(
            "pk", "versions", "created_at"
        ):
            wanted = pinned_version(event.type, pins, created_at, history)
            version, _ = versioned_data(event, wanted)
            if version is not None:
                versions[pk] = version
    return versions
