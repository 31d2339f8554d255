"""The admin: tenants with their endpoints' health, and every list filtered by tenant."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from deliveries.models import DeliveryStatus, Event
from subscriptions.models import Tenant
from tests.factories import make_subscription
from tests.ops_helpers import make_delivery, roll_up

pytestmark = pytest.mark.django_db


def changelist(model: str) -> str:
    app = "deliveries" if model in {"event", "delivery"} else "webhook_subscriptions"
    return reverse(f"admin:{app}_{model}_changelist")


@pytest.fixture
def two_tenants():
    a_ok = make_subscription("http://127.0.0.1:9/a-ok", tenant="org_a")
    a_bad = make_subscription(
        "http://127.0.0.1:9/a-bad", tenant="org_a", failing_since=timezone.now()
    )
    b = make_subscription("http://127.0.0.1:9/b-only", tenant="org_b")
    make_delivery(a_ok, DeliveryStatus.SUCCEEDED, attempts=[(200, 30)], data={"who": "a-ok"})
    make_delivery(a_bad, DeliveryStatus.RETRYING, attempts=[(500, 30)], data={"who": "a-bad"})
    make_delivery(b, DeliveryStatus.SUCCEEDED, attempts=[(200, 5)], data={"who": "b"})
    roll_up()
    return a_ok, a_bad, b


def test_the_tenant_list_shows_each_tenants_health(admin_client, two_tenants):
    Tenant.objects.filter(pk="org_b").update(max_in_flight=3)

    page = admin_client.get(changelist("tenant")).content.decode()

    row_a = page[page.index(">org_a<") : page.index(">org_b<")]
    assert f"{changelist('subscription')}?tenant=org_a" in row_a
    assert ">2 (2)</a>" in row_a  # endpoints (active)
    assert "50.0%" in row_a and "1 of 2 attempts" in row_a
    assert '<b style="color:#c62828">1</b>' in row_a  # one failing endpoint
    row_b = page[page.index(">org_b<") :]
    assert "100.0%" in row_b and "1000 / 3" in row_b  # default and own limits


def test_the_tenant_list_costs_the_same_queries_for_more_tenants(admin_client, two_tenants):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(changelist("tenant")).status_code == 200
        return len(captured)

    before = queries()
    for n in range(10):
        make_delivery(make_subscription(f"http://127.0.0.1:9/{n}", tenant=f"org_{n:02}"))
    assert queries() == before


def results(page: str) -> str:
    """The changelist's table of rows (not the filter sidebar)."""
    start = page.index('<table id="result_list"')
    return page[start : page.index("</table>", start)]


@pytest.mark.parametrize("model", ["subscription", "event", "delivery"])
def test_every_list_filters_by_tenant(admin_client, two_tenants, model):
    everything = admin_client.get(changelist(model)).content.decode()
    only_b = admin_client.get(f"{changelist(model)}?tenant=org_b").content.decode()

    assert "org_a" in results(everything) and "org_b" in results(everything)
    assert "org_b" in results(only_b) and "org_a" not in results(only_b)
    # The filter sidebar offers the tenants.
    assert "?tenant=org_a" in everything


def test_an_event_shows_its_tenant_and_broadcast_flag(admin_client, two_tenants):
    event = Event.objects.filter(tenant_id="org_b").get()
    page = admin_client.get(reverse("admin:deliveries_event_change", args=[event.pk]))
    content = page.content.decode()
    assert page.status_code == 200 and "org_b" in content and "broadcast" in content.lower()
