"""Datetimes on the wire: UTC with a `Z` out, an explicit offset in, whatever the host's
`TIME_ZONE` and `USE_TZ` (shared/DESIGN.md, "HTTP API").

DRF's own `DateTimeField` writes datetimes in the current time zone (`+01:00` in Berlin, and a
different offset after each DST change) and, with `USE_TZ = False`, without any offset; it reads
a datetime without an offset as local time, so a client's `since` means something else on every
host. Every API serializer of both apps uses `DateTimeField` and `ModelSerializer` from here
instead (tests/test_wire_time.py checks it).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers


def to_wire(value: dt.datetime) -> str:
    """`value` as ISO 8601 in UTC with a `Z` suffix. A naive value is taken to be in the
    host's `TIME_ZONE` (what Django stores with `USE_TZ = False`)."""
    if timezone.is_naive(value):
        value = timezone.make_aware(value, timezone.get_default_timezone())
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


class DateTimeField(serializers.DateTimeField):
    """DRF's `DateTimeField`, with UTC (`...Z`) output and input that must carry an offset
    (`Z` or `±hh:mm`): without one it is a field error, not a guess at the host's zone."""

    default_error_messages = {
        "naive": _(
            "Give the time zone: end the datetime with 'Z' (UTC) or an offset such as '+02:00'."
        ),
    }

    def to_internal_value(self, value: Any) -> dt.datetime:
        if isinstance(value, str):
            try:
                parsed = parse_datetime(value.strip())
            except ValueError:
                parsed = None  # out of range: DRF's own message below
            if parsed is not None and timezone.is_naive(parsed):
                self.fail("naive")
        elif isinstance(value, dt.datetime) and timezone.is_naive(value):
            self.fail("naive")
        result = super().to_internal_value(value)
        if settings.USE_TZ and timezone.is_aware(result):
            return result.astimezone(dt.UTC)
        return result

    # DRF's own DateTimeField answers None for an empty value too; the stubs type it `str`.
    def to_representation(self, value: Any) -> str | None:  # type: ignore[override]
        if value in (None, ""):
            return None
        if isinstance(value, str):
            value = parse_datetime(value) or value
            if isinstance(value, str):
                return value
        if not isinstance(value, dt.datetime):
            return super().to_representation(value)
        return to_wire(value)


class ModelSerializer(serializers.ModelSerializer):
    """DRF's `ModelSerializer`, whose model datetime fields are this module's `DateTimeField`."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.DateTimeField: DateTimeField,
    }
