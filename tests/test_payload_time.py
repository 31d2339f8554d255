"""The body's timestamp is UTC with a `Z` whatever the host's time settings:
the Standard Webhooks body and CloudEvents' `time` (RFC 3339) are wire formats."""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo

import pytest
from django.test import override_settings
from django.utils import timezone

from deliveries.models import Event
from deliveries.payloads import build_body
from deliveries.services import publish

pytestmark = pytest.mark.django_db

FORMATS = ["standard", "cloudevents"]


def wire_time(event: Event, payload_format: str) -> str:
    body = json.loads(build_body(event, payload_format))
    return body["timestamp"] if payload_format == "standard" else body["time"]


@pytest.mark.parametrize("payload_format", FORMATS)
def test_naive_local_time_of_a_host_without_time_zones_goes_out_as_utc(payload_format):
    with override_settings(USE_TZ=False, TIME_ZONE="America/New_York"):
        # 09:30 in New York in January is 14:30 UTC (EST, UTC-5).
        event = Event(type="order.created", data={}, created_at=dt.datetime(2026, 1, 15, 9, 30))
        assert wire_time(event, payload_format) == "2026-01-15T14:30:00Z"


@pytest.mark.parametrize("payload_format", FORMATS)
def test_an_aware_time_in_another_zone_goes_out_as_utc(payload_format):
    paris = zoneinfo.ZoneInfo("Europe/Paris")
    event = Event(
        type="order.created",
        data={},
        created_at=dt.datetime(2026, 7, 1, 12, 0, 0, 250000, tzinfo=paris),
    )

    assert wire_time(event, payload_format) == "2026-07-01T10:00:00.250000Z"


@pytest.mark.parametrize("payload_format", FORMATS)
def test_an_event_stored_by_a_host_without_time_zones_goes_out_as_utc(payload_format):
    with override_settings(USE_TZ=False, TIME_ZONE="Asia/Kolkata"):
        before = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        event = Event.objects.get(pk=publish("order.created", {"n": 1}).pk)
        assert timezone.is_naive(event.created_at)
        sent = wire_time(event, payload_format)
        after = dt.datetime.now(dt.UTC).replace(tzinfo=None)

    assert sent.endswith("Z")
    as_utc = dt.datetime.fromisoformat(sent.removesuffix("Z"))
    # Within the publish, not 5.5 hours off (Kolkata is UTC+5:30).
    assert before - dt.timedelta(seconds=1) <= as_utc <= after + dt.timedelta(seconds=1)
