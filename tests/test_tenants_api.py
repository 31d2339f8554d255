"""GET /api/tenants/ and /api/tenants/{key}/: limits and 24 h health, for permission holders."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from deliveries.models import DeliveryStatus
from deliveries.services import inflight
from subscriptions.models import Subscription, Tenant
from tests.factories import api_client, make_subscription, make_user
from tests.ops_helpers import make_delivery, roll_up

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator():
    return api_client(make_user("operator", "view_tenant"))


def test_a_tenant_shows_its_limits_and_health(operator, settings, broker):
    settings.WEBHOOKS = {**settings.WEBHOOKS, "TENANT_MAX_SUBSCRIPTIONS": 50, "MAX_RATE": 3}
    tenant = Tenant.objects.for_key("org_a")
    tenant.max_in_flight, tenant.contact_email = 5, "ops@org-a.example"
    tenant.save()
    now = timezone.now()
    ok = make_subscription("http://127.0.0.1:9/ok", tenant="org_a")
    failing = make_subscription("http://127.0.0.1:9/bad", tenant="org_a", failing_since=now)
    make_subscription("http://127.0.0.1:9/off", tenant="org_a", is_active=False)
    make_delivery(ok, DeliveryStatus.SUCCEEDED, attempts=[(200, 20), (200, 40)])
    make_delivery(failing, DeliveryStatus.RETRYING, attempts=[(500, 900)])
    # Older than 24 hours, and another tenant's: not counted.
    make_delivery(ok, attempts=[(500, 10)], created_at=now - dt.timedelta(days=2))
    make_delivery(make_subscription("http://127.0.0.1:9/b", tenant="org_b"), attempts=[(500, 1)])
    held = inflight.acquire(ok)
    roll_up()

    body = operator.get("/api/tenants/org_a/").json()

    assert body["key"] == "org_a" and body["contact_email"] == "ops@org-a.example"
    assert (body["max_subscriptions"], body["max_in_flight"], body["max_rate"]) == (None, 5, None)
    # The rate each endpoint without its own gets: the row's max_rate, else MAX_RATE.
    assert body["limits"] == {"subscriptions": 50, "in_flight": 5, "rate": 3.0}
    assert body["health"] == {
        "subscriptions": 3,
        "active_subscriptions": 2,
        "failing_subscriptions": 1,
        "attempts_24h": 3,
        "succeeded_24h": 2,
        "success_rate": pytest.approx(2 / 3),
        "p95_ms": 1000,
        "unfinished_deliveries": 1,
        "counted_up_to": body["health"]["counted_up_to"],
    }
    # The figures say how far they are counted: past the attempts above (roll_up()).
    assert parse_datetime(body["health"]["counted_up_to"]) > now
    assert body["in_flight"] == 1
    held.release()


def test_the_list_costs_the_same_queries_whatever_the_number_of_tenants(operator):
    def queries(tenants: int) -> int:
        for n in range(Tenant.objects.count(), tenants):
            make_delivery(make_subscription(f"http://127.0.0.1:9/{n}", tenant=f"t{n:03}"))
        operator.get("/api/tenants/?limit=100")  # the user's permissions are cached after it
        with CaptureQueriesContext(connection) as captured:
            response = operator.get("/api/tenants/?limit=100")
        assert response.status_code == 200
        return len(captured)

    assert queries(3) == queries(30)
    body = operator.get("/api/tenants/?limit=2&offset=1").json()
    assert body["count"] == Tenant.objects.count()
    assert [row["key"] for row in body["results"]] == list(
        Tenant.objects.order_by("key").values_list("key", flat=True)[1:3]
    )
    assert body["results"][0]["health"]["unfinished_deliveries"] == 0
    assert body["results"][0]["health"]["subscriptions"] == 1


def test_an_unknown_or_malformed_key_is_404(operator):
    assert operator.get("/api/tenants/nobody/").status_code == 404
    assert operator.get("/api/tenants/bad%20key/").status_code == 404
    assert not Tenant.objects.filter(pk="nobody").exists()  # reading creates nothing
    assert Subscription.objects.count() == 0
