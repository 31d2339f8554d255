"""Datetimes on the wire are UTC with a `Z`, whatever `TIME_ZONE` and `USE_TZ`; a datetime given
without an offset is a 400 naming the field (shared/DESIGN.md, "HTTP API")."""

from __future__ import annotations

import ast
import datetime as dt
import re

import pytest
from django.test import override_settings
from django.utils import timezone
from rest_framework import serializers
from rest_framework.test import APIClient

from tests.factories import make_subscription, make_user
from tests.ops_helpers import make_delivery
from tests.procs import ROOT
from webhooks_core import wire

pytestmark = pytest.mark.django_db

UTC_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


@pytest.fixture
def api():
    client = APIClient()
    client.force_authenticate(
        make_user("ops", "view_delivery", "view_event", "change_subscription")
    )
    return client


def datetimes_in(body: object) -> list[str]:
    """Every string in `body` that looks like a datetime (a date, a 'T', a time)."""
    found = []
    stack = [body]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, str) and re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d", node):
            found.append(node)
    return found


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/St_Johns", "UTC"])
def test_api_datetimes_are_utc_with_z_in_any_time_zone(api, zone):
    sub = make_subscription("http://127.0.0.1:9/hook", tenant="org_a")
    created = timezone.now().replace(microsecond=250000)
    delivery = make_delivery(
        sub, "succeeded", created_at=created, attempts=[(200, 5)], delivered_at=created
    )

    with override_settings(TIME_ZONE=zone):
        bodies = [
            api.get(f"/api/deliveries/{delivery.pk}/").json(),
            api.get(f"/api/events/{delivery.event_id}/").json(),
            api.get(f"/api/subscriptions/{sub.pk}/").json(),
        ]

    stamps = [stamp for body in bodies for stamp in datetimes_in(body)]
    assert len(stamps) >= 6
    assert all(UTC_Z.match(stamp) for stamp in stamps), stamps
    assert bodies[0]["created_at"] == created.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize(
    ("path", "field"),
    [("/api/deliveries/?since={}", "since"), ("/api/deliveries/?until={}", "until")],
)
def test_a_query_datetime_without_offset_is_a_400_naming_it(api, path, field):
    response = api.get(path.format("2026-03-29T02:30:00"))  # not even a Berlin time

    assert response.status_code == 400
    assert "offset" in response.json()[field][0]
    assert api.get(path.format("2026-03-29T02:30:00Z")).status_code == 200
    assert api.get(path.format("2026-03-29T02:30:00%2B02:00")).status_code == 200


def test_a_body_datetime_without_offset_is_a_400_naming_it(api):
    sub = make_subscription("http://127.0.0.1:9/hook", tenant="org_a")

    response = api.post(
        f"/api/subscriptions/{sub.pk}/replay/", {"since": "2026-01-01T00:00:00"}, format="json"
    )

    assert response.status_code == 400 and "since" in response.json()


def test_an_offset_is_read_as_given_whatever_the_host_zone():
    field = wire.DateTimeField()
    with override_settings(TIME_ZONE="Europe/Berlin"):
        value = field.to_internal_value("2026-07-01T12:00:00+02:00")
    assert value == dt.datetime(2026, 7, 1, 10, 0, tzinfo=dt.UTC)
    with pytest.raises(serializers.ValidationError):
        field.to_internal_value(dt.datetime(2026, 7, 1, 12, 0))


@override_settings(USE_TZ=False, TIME_ZONE="Europe/Berlin")
def test_naive_values_of_a_host_without_time_zones_go_out_as_utc():
    # With USE_TZ = False Django stores and returns local time in TIME_ZONE, without offset.
    assert wire.DateTimeField().to_representation(dt.datetime(2026, 1, 15, 15, 30)) == (
        "2026-01-15T14:30:00Z"
    )
    assert wire.to_wire(dt.datetime(2026, 7, 15, 15, 30)) == "2026-07-15T13:30:00Z"


API_MODULES = ["webhooks_core", "subscriptions", "deliveries", "webhooks_portal"]


def test_every_api_serializer_uses_the_wire_datetime():
    """DRF's own DateTimeField and ModelSerializer would write local time: none outside wire."""
    offenders = []
    for package in API_MODULES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.name == "wire.py" or "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if (
                    isinstance(node, ast.Attribute)
                    and isinstance(node.value, ast.Name)
                    and node.value.id == "serializers"
                    and node.attr in {"DateTimeField", "ModelSerializer"}
                ):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
