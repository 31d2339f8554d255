"""Event types declared in the host's code: a DRF serializer per version, down-converters
between versions, and the registry that renders an event in any declared version.

A host declares types in a `webhook_events` module of any installed app (imported when the
apps are ready, as `admin.py` modules are)::

    from subscriptions.contracts import downgrade, register_event

    register_event("order.created", serializer=OrderV1Serializer, version=1, deprecated=True)
    register_event("order.created", serializer=OrderSerializer, version=2,
                   description="An order was placed.")

    @downgrade("order.created", 2, 1)
    def order_created_2_to_1(data: dict) -> dict:
        data["amount"] = data.pop("total")
        return data

`publish("order.created", order)` serializes `order` through the latest version's serializer;
each older version is rendered from it by the chain of one-step down-converters. The catalog
(EventType rows) is filled from this registry after `migrate` (`catalog.sync_catalog`).

The registry is process memory: it knows nothing of the database or of the pipeline.
"""

from __future__ import annotations

import copy
import itertools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import jsonschema
from django.core.exceptions import ImproperlyConfigured
from rest_framework.serializers import BaseSerializer
from rest_framework.utils.encoders import JSONEncoder

from .contract_schema import serializer_schema
from .examples import example_from_schema
from .matching import is_valid_event_type

Converter = Callable[[dict[str, Any]], dict[str, Any]]
S = TypeVar("S", bound=type[BaseSerializer])
MAX_VERSION = 32767  # the delivery's version column is a PositiveSmallIntegerField


class ContractError(RuntimeError):
    """A declared contract cannot render an event: a missing or failing down-converter, or
    (with `WEBHOOKS["DOWNGRADE_ERRORS"] = "raise"`) output that does not match its version's
    schema. A defect in the host's code, not in the publisher's input."""


@dataclass
class EventVersion:
    """One version of a declared event type: its serializer and catalog entry.

    `example` is the one given at declaration, or None (the catalog then renders the next
    version's example down, or makes one from the schema: see `ContractRegistry.example`).
    """

    name: str
    version: int
    serializer: type[BaseSerializer]
    description: str = ""
    example: dict[str, Any] | None = None
    deprecated: bool = False
    _schema: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    @property
    def schema(self) -> dict[str, Any]:
        """The JSON Schema of this version's data, generated once from the serializer."""
        if self._schema is None:
            self._schema = serializer_schema(self.serializer)
        return self._schema


class ContractRegistry:
    """Declared event types by name and version, and the down-converters between versions.

    Thread-safe for the declarations made at import time and read afterwards.
    """

    def __init__(self) -> None:
        self._types: dict[str, dict[int, EventVersion]] = {}
        self._converters: dict[tuple[str, int], Converter] = {}
        self._lock = threading.Lock()

    # --- declaring -----------------------------------------------------------------------

    def register(
        self,
        name: str,
        *,
        serializer: type[BaseSerializer],
        version: int = 1,
        description: str = "",
        example: dict[str, Any] | None = None,
        deprecated: bool = False,
    ) -> EventVersion:
        """Declare `version` of event type `name`, whose data is `serializer`'s output.

        Declaring the same version again with the same serializer replaces its details (a
        module imported twice); with another serializer raises ImproperlyConfigured, as do a
        malformed name, a version outside 1..32767 and a serializer that is not a DRF
        serializer class.
        """
        if not isinstance(name, str) or not is_valid_event_type(name):
            raise ImproperlyConfigured(f"{name!r} is not an event type name such as 'a.b'.")
        if (
            isinstance(version, bool)
            or not isinstance(version, int)
            or not (1 <= version <= MAX_VERSION)
        ):
            raise ImproperlyConfigured(f"{name} version {version!r}: a whole number 1..32767.")
        if not (isinstance(serializer, type) and issubclass(serializer, BaseSerializer)):
            raise ImproperlyConfigured(f"{name} v{version}: serializer must be a DRF class.")
        if example is not None and not isinstance(example, dict):
            raise ImproperlyConfigured(f"{name} v{version}: the example is a JSON object.")
        with self._lock:
            versions = self._types.setdefault(name, {})
            known = versions.get(version)
            if known is not None and known.serializer is not serializer:
                raise ImproperlyConfigured(
                    f"{name} v{version} is already declared with {known.serializer.__name__}."
                )
            entry = EventVersion(name, version, serializer, description, example, deprecated)
            versions[version] = entry
            return entry

    def event_type(self, name: str, *, version: int = 1, **details: Any) -> Callable[[S], S]:
        """Class decorator form of `register`: `@event_type("order.created", version=2)`."""

        def declare(serializer: S) -> S:
            self.register(name, serializer=serializer, version=version, **details)
            return serializer

        return declare

    def downgrade(
        self, name: str, from_version: int, to_version: int
    ) -> Callable[[Converter], Converter]:
        """Decorator: the function turns `name`'s data from `from_version` into the version
        just below it. One step at a time (`to_version == from_version - 1`): a subscriber
        pinned two versions back gets both steps in turn. Raises ImproperlyConfigured
        otherwise, or if that step already has a converter."""
        if to_version != from_version - 1 or to_version < 1:
            raise ImproperlyConfigured(
                f"@downgrade({name!r}, {from_version}, {to_version}): one step down at a time."
            )

        def declare(converter: Converter) -> Converter:
            with self._lock:
                known = self._converters.get((name, from_version))
                if known is not None and known is not converter:
                    raise ImproperlyConfigured(
                        f"{name} {from_version}->{to_version} already has a converter."
                    )
                self._converters[(name, from_version)] = converter
            return converter

        return declare

    def forget(self, name: str) -> None:
        """Drop every version and converter of `name` (for tests that declare their own)."""
        with self._lock:
            self._types.pop(name, None)
            for key in [key for key in self._converters if key[0] == name]:
                del self._converters[key]

    # --- reading -------------------------------------------------------------------------

    def names(self) -> list[str]:
        return sorted(self._types)

    def is_declared(self, name: str) -> bool:
        return bool(self._types.get(name))

    def versions(self, name: str) -> list[EventVersion]:
        """Every declared version of `name`, oldest first ([] if undeclared)."""
        return [entry for _, entry in sorted(self._types.get(name, {}).items())]

    def get(self, name: str, version: int) -> EventVersion | None:
        return self._types.get(name, {}).get(version)

    def latest(self, name: str) -> EventVersion | None:
        versions = self._types.get(name)
        return versions[max(versions)] if versions else None

    def problems(self) -> list[str]:
        """What keeps the declarations from working, one sentence each: a missing
        down-converter between two declared versions, a converter for an undeclared version,
        a serializer without an object schema, an example that does not match its schema."""
        found = []
        for name in self.names():
            numbers = sorted(self._types[name])
            for lower, upper in itertools.pairwise(numbers):
                for step in range(upper, lower, -1):
                    if (name, step) not in self._converters:
                        found.append(f"{name}: no @downgrade({name!r}, {step}, {step - 1}).")
            for entry in self.versions(name):
                try:
                    schema = entry.schema
                except ValueError as exc:
                    found.append(f"{name} v{entry.version}: {exc}")
                    continue
                if entry.example is not None:
                    error = schema_error(entry.example, schema)
                    if error:
                        found.append(f"{name} v{entry.version}: the example {error}")
        for name, step in sorted(self._converters):
            if not self.get(name, step):
                found.append(f"{name}: a @downgrade from v{step}, which is not declared.")
        return found

    # --- rendering -----------------------------------------------------------------------

    def serialize(self, name: str, instance_or_data: Any) -> dict[str, Any]:
        """The latest version's data for `instance_or_data`, as plain JSON values.

        A dict is taken as already serialized (the API's `data`); anything else goes through
        the latest version's serializer (`Serializer(instance).data`). Decimals, datetimes and
        UUIDs become strings as DRF renders them. Raises KeyError if `name` is not declared.
        """
        entry = self.latest(name)
        if entry is None:
            raise KeyError(name)
        data = (
            instance_or_data
            if isinstance(instance_or_data, dict)
            else entry.serializer(instance_or_data).data
        )
        return json.loads(json.dumps(data, cls=JSONEncoder))

    def render(
        self, name: str, data: dict[str, Any], from_version: int, to_version: int
    ) -> dict[str, Any]:
        """`data` of `from_version` rendered in the older `to_version` by the chain of
        one-step converters (each given its own copy). Raises ContractError if a step has no
        converter, a converter raises, or returns something other than a dict."""
        current = copy.deepcopy(data)
        for step in range(from_version, to_version, -1):
            converter = self._converters.get((name, step))
            if converter is None:
                raise ContractError(f"{name}: no down-converter from v{step} to v{step - 1}.")
            try:
                current = converter(current)
            except Exception as exc:
                raise ContractError(
                    f"{name}: the down-converter from v{step} to v{step - 1} failed: {exc!r}"
                ) from exc
            if not isinstance(current, dict):
                raise ContractError(
                    f"{name}: the down-converter from v{step} to v{step - 1} returned "
                    f"{type(current).__name__}, not a dict."
                )
        return current

    def example(self, name: str, version: int) -> dict[str, Any]:
        """The catalog's example of `version`: the declared one; else the next version's
        example rendered down (so the examples of all versions tell one story); else one made
        from the schema. Raises KeyError if that version is not declared."""
        entry = self.get(name, version)
        if entry is None:
            raise KeyError((name, version))
        if entry.example is not None:
            return copy.deepcopy(entry.example)
        newer = self.get(name, version + 1)
        if newer is not None and (name, version + 1) in self._converters:
            try:
                return self.render(name, self.example(name, version + 1), version + 1, version)
            except ContractError:
                pass  # reported by the system check; the schema still gives an example
        made = example_from_schema(entry.schema)
        return made if isinstance(made, dict) else {}


def schema_error(data: Any, schema: dict[str, Any]) -> str | None:
    """Why `data` does not match `schema` ("at items/0: 3 is not of type 'string'"), or None."""
    try:
        jsonschema.validate(data, schema)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(part) for part in exc.absolute_path) or "(root)"
        return f"does not match the schema at {where}: {exc.message}"
    except RecursionError:
        return "is nested too deeply to check against the schema"
    return None


contracts = ContractRegistry()
register_event = contracts.register
event_type = contracts.event_type
downgrade = contracts.downgrade
