"""The catalog's rows for types declared in code, and which version a subscription receives.

`sync_catalog` writes the registry (`contracts`) into EventType and EventTypeVersion rows; it
runs from the `post_migrate` signal (connected in `SubscriptionsConfig.ready()`), so declared
types are listed after `migrate` alone, and never queries the database at import time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import router, transaction

from .contracts import ContractRegistry, contracts
from .matching import filters_match
from .models import EventType, EventTypeVersion


def sync_catalog(using: str | None = None, registry: ContractRegistry = contracts) -> int:
    """Write every declared type and version into the catalog on database `using`; returns
    how many versions are declared.

    A declared type's row takes the latest version's description and schema (so publishing
    validates against it as for hand-typed types) and is marked `declared`; a version no longer
    declared loses its row; a type no longer declared keeps its row, unmarked, as hand-typed.
    A hand-typed type of the same name becomes declared. `created_at` of a version row is kept
    (it decides which version unpinned subscriptions receive).
    """
    using = using or router.db_for_write(EventType)
    count = 0
    with transaction.atomic(using=using):
        names = registry.names()
        for name in names:
            latest = registry.latest(name)
            assert latest is not None  # names() lists declared types only
            event_type, _ = EventType.objects.using(using).update_or_create(
                name=name,
                defaults={
                    "description": latest.description,
                    "schema": latest.schema,
                    "declared": True,
                },
            )
            declared = registry.versions(name)
            for entry in declared:
                EventTypeVersion.objects.using(using).update_or_create(
                    event_type=event_type,
                    version=entry.version,
                    defaults={
                        "description": entry.description,
                        "schema": entry.schema,
                        "example": registry.example(name, entry.version),
                        "deprecated": entry.deprecated,
                    },
                )
                count += 1
            EventTypeVersion.objects.using(using).filter(event_type=event_type).exclude(
                version__in=[entry.version for entry in declared]
            ).delete()
        EventType.objects.using(using).filter(declared=True).exclude(name__in=names).update(
            declared=False
        )
    return count


def sync_after_migrate(using: str = "default", **kwargs: Any) -> None:
    """`post_migrate` receiver: fill the catalog from the code's declarations."""
    if router.allow_migrate_model(using, EventType):
        sync_catalog(using)


def version_history(name: str, using: str | None = None) -> list[tuple[int, dt.datetime]]:
    """(version, first declared) of every catalog version of `name`, oldest version first."""
    rows = EventTypeVersion.objects.using(using or router.db_for_read(EventTypeVersion))
    return list(
        rows.filter(event_type__name=name).order_by("version").values_list("version", "created_at")
    )


def pinned_version(
    name: str,
    pins: dict[str, Any] | None,
    created_at: dt.datetime | None,
    history: list[tuple[int, dt.datetime]],
) -> int | None:
    """The version of `name` a subscription receives: its pin if that version is in
    `history` (see `version_history`); else the latest version first declared before the
    subscription was created (`created_at`; None: now); else the oldest. None if `history` is
    empty (the type is not versioned)."""
    if not history:
        return None
    known = [version for version, _ in history]
    pin = (pins or {}).get(name)
    if isinstance(pin, int) and not isinstance(pin, bool) and pin in known:
        return pin
    if created_at is None:
        return known[-1]
    before = [version for version, first in history if first <= created_at]
    return before[-1] if before else known[0]


def default_pins(
    event_types: Iterable[str], registry: ContractRegistry = contracts
) -> dict[str, int]:
    """Pins for a new subscription with these filters: the latest version of every declared
    type they select (`order.*` selects every declared `order.` type)."""
    filters = list(event_types)
    pins = {}
    for name in registry.names():
        latest = registry.latest(name)
        if latest is not None and filters_match(filters, name):
            pins[name] = latest.version
    return pins


class PinError(ValueError):
    """A `versions` value that cannot be pinned; the message names the type and version."""


def merge_pins(
    current: dict[str, Any] | None, wanted: dict[str, Any], registry: ContractRegistry = contracts
) -> dict[str, int]:
    """`current` pins with `wanted` applied (types left out keep their pins).

    Raises PinError for a type not declared in code, a version it does not declare, or a
    move to a deprecated version (a pin already on it may stay: moving is one way).
    """
    merged = {name: version for name, version in (current or {}).items()}
    for name, version in wanted.items():
        if not registry.is_declared(name):
            raise PinError(f"{name!r} has no versions: it is not declared in code.")
        if isinstance(version, bool) or not isinstance(version, int):
            raise PinError(f"The version of {name!r} is a whole number.")
        entry = registry.get(name, version)
        if entry is None:
            known = ", ".join(str(e.version) for e in registry.versions(name))
            raise PinError(f"{name!r} has no version {version} (declared: {known}).")
        if entry.deprecated and merged.get(name) != version:
            raise PinError(f"{name!r} version {version} is deprecated: choose a newer one.")
        merged[name] = version
    return merged


@dataclass
class PinnedType:
    """A declared type that a subscription receives: the version it gets now (`current`, its
    pin or the default of `pinned_version`) and every catalog version (oldest first)."""

    name: str
    current: int
    versions: list[EventTypeVersion]

    @property
    def current_entry(self) -> EventTypeVersion | None:
        return next((row for row in self.versions if row.version == self.current), None)

    @property
    def latest(self) -> int:
        return self.versions[-1].version

    def choices(self) -> list[EventTypeVersion]:
        """Versions it may move to: those not deprecated, and the current one."""
        return [row for row in self.versions if not row.deprecated or row.version == self.current]


def pinned_types(subscription: Any) -> list[PinnedType]:
    """The catalog's declared types that `subscription`'s filters select, by name, with the
    version each is received in (one query)."""
    rows = EventTypeVersion.objects.filter(event_type__declared=True).select_related("event_type")
    by_name: dict[str, list[EventTypeVersion]] = {}
    for row in rows.order_by("event_type__name", "version"):
        by_name.setdefault(row.event_type.name, []).append(row)
    found = []
    for name, versions in by_name.items():
        if not filters_match(subscription.event_types or (), name):
            continue
        history = [(row.version, row.created_at) for row in versions]
        current = pinned_version(name, subscription.versions, subscription.created_at, history)
        if current is not None:
            found.append(PinnedType(name, current, versions))
    return found
