"""Searching the delivery log through the API (`GET /api/deliveries/`): every criterion, the
event type's wildcard forms, bad input as a 400 naming the field, stable cursors, and tenant
isolation."""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import quote, urlencode

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deliveries.models import DeliveryStatus
from deliveries.services.logsearch import DeliverySearch, event_type_q
from tests.factories import api_client, make_tenant_user, make_user
from tests.search_helpers import T0, endpoint, logged

pytestmark = pytest.mark.django_db


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def search(client, **params) -> list[int]:
    return ids(client.get("/api/deliveries/?" + urlencode(params, doseq=True)))


@pytest.fixture
def operator():
    return api_client(make_user("operator", "view_delivery", "change_delivery"))


def test_event_type_takes_the_forms_endpoints_subscribe_with(operator):
    sub = endpoint("acme")
    paid = logged(sub, "invoice.paid")
    nested = logged(sub, "invoice.line.added", minutes=1)
    order = logged(sub, "order.created", minutes=2)
    lookalike = logged(sub, "invoices.paid", minutes=3)
    assert search(operator, type="invoice.paid") == [paid.pk]
    assert search(operator, type="invoice.*") == [nested.pk, paid.pk]
    assert search(operator, type="*") == [lookalike.pk, order.pk, nested.pk, paid.pk]
    # `invoice` alone is an exact name, as in a subscription's filter.
    assert search(operator, type="invoice") == []


def test_status_one_or_several_repeated_or_comma_separated(operator):
    sub = endpoint("acme")
    failed = logged(sub, status=DeliveryStatus.FAILED)
    skipped = logged(sub, status=DeliveryStatus.SKIPPED, code=None, minutes=1)
    logged(sub, status=DeliveryStatus.SUCCEEDED, code=200, minutes=2)
    assert search(operator, status="failed") == [failed.pk]
    assert search(operator, status=["failed", "skipped"]) == [skipped.pk, failed.pk]
    assert search(operator, status="failed,skipped") == [skipped.pk, failed.pk]


def test_response_status_time_range_subscription_and_event(operator):
    sub, other = endpoint("acme"), endpoint("acme", "http://127.0.0.1:9/other")
    early = logged(sub, code=503, minutes=0)
    late = logged(sub, code=500, minutes=60)
    elsewhere = logged(other, code=503, minutes=30)
    assert search(operator, response_status=503) == [elsewhere.pk, early.pk]
    since = (T0 + dt.timedelta(minutes=10)).isoformat()
    until = (T0 + dt.timedelta(minutes=50)).isoformat()
    assert search(operator, since=since, until=until) == [elsewhere.pk]
    assert search(operator, subscription=str(sub.pk)) == [late.pk, early.pk]
    assert search(operator, event=str(late.event_id)) == [late.pk]


def test_tenant_criterion_for_operators(operator):
    mine = logged(endpoint("acme"))
    theirs = logged(endpoint("globex"), minutes=1)
    assert search(operator, tenant="acme") == [mine.pk]
    assert search(operator, tenant="globex") == [theirs.pk]


def test_filter_over_event_data_url_encoded(operator):
    sub = endpoint("acme")
    small = logged(sub, data={"amount": 5, "currency": "EUR"})
    big = logged(sub, data={"amount": 500, "currency": "EUR"}, minutes=1)
    logged(sub, data={"amount": 900, "currency": "USD"}, minutes=2)
    wanted = {"data.amount": {"$gt": 100}, "data.currency": "EUR"}
    response = operator.get("/api/deliveries/?filter=" + quote(json.dumps(wanted)))
    assert ids(response) == [big.pk]
    assert search(operator, filter=json.dumps({"data.currency": "EUR"})) == [big.pk, small.pk]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("since=2026-03-01T12:00:00", "since"),
        ("until=2026-03-01T12:00:00", "until"),
        ("status=lost", "status"),
        ("response_status=99", "response_status"),
        ("response_status=abc", "response_status"),
        ("type=invoice.*.paid", "type"),
        ("type=%20invoice.paid", "type"),
        ("filter=%7Bnot%20json", "filter"),
        ("filter=" + quote(json.dumps({"data.a": {"$regex": "x"}})), "filter"),
        ("subscription=nope", "subscription"),
        ("since=2026-03-02T00:00:00Z&until=2026-03-01T00:00:00Z", "until"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(operator, query, field):
    response = operator.get(f"/api/deliveries/?{query}")
    assert response.status_code == 400, response.content
    assert field in response.json()


def test_a_tenant_user_never_sees_or_names_another_tenant(operator):
    user = api_client(make_tenant_user("alice", "acme"))
    mine = logged(endpoint("acme"))
    logged(endpoint("globex"), minutes=1)
    assert search(user) == [mine.pk]
    assert search(user, type="*", status=["failed", "skipped"]) == [mine.pk]
    # Naming another tenant is refused, not answered with an empty page.
    response = user.get("/api/deliveries/?tenant=globex")
    assert response.status_code == 400 and "tenant" in response.json()
    assert search(user, tenant="acme") == [mine.pk]


def test_cursors_are_stable_while_new_deliveries_arrive(operator):
    sub = endpoint("acme")
    rows = [logged(sub, minutes=i) for i in range(5)]
    first = operator.get("/api/deliveries/?status=failed&limit=2").json()
    assert [r["id"] for r in first["results"]] == [rows[4].pk, rows[3].pk]
    logged(sub, minutes=10)  # newer: must not shift the next page
    second = operator.get(first["next"]).json()
    assert [r["id"] for r in second["results"]] == [rows[2].pk, rows[1].pk]
    assert "status=failed" in first["next"] and "count" not in first


def test_query_count_is_constant_in_the_number_of_matches(operator):
    sub = endpoint("acme")
    logged(sub)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            search(operator, type="invoice.*", status="failed", tenant="acme")
        return len(captured)

    queries()  # the first request also loads the user's permissions
    before = queries()
    for i in range(10):
        logged(sub, minutes=i + 1)
    assert queries() == before


def test_search_q_on_its_own():
    assert DeliverySearch().is_empty and not DeliverySearch(statuses=("failed",)).is_empty
    assert str(event_type_q("*")) == str(event_type_q("*", prefix=""))
    with pytest.raises(ValueError):
        event_type_q("a..b")
    described = DeliverySearch(
        statuses=("failed",), since=T0, event_type="invoice.*", response_status=503
    ).describe()
    assert described == {
        "status": ["failed"],
        "response_status": 503,
        "event_type": "invoice.*",
        "since": T0.isoformat(),
    }


def test_every_delivery_carries_its_subscriptions_tenant(django_capture_on_commit_callbacks):
    """The copy the tenant indexes lead with: set by the fan-out (own tenant, broadcast, test
    event), by save() and by bulk_create() when not given."""
    from deliveries.models import Delivery, Event
    from deliveries.services import publish
    from deliveries.services.probes import send_test_event

    a, b = endpoint("org_a"), endpoint("org_b", "http://127.0.0.1:9/b")
    with django_capture_on_commit_callbacks(execute=True):
        own = publish("order.created", {}, tenant="org_a")
        everyone = publish("notice.sent", {}, broadcast=True)
        probe = send_test_event(b).event
    rows = {(d.event_id, d.subscription_id): d.tenant_key for d in Delivery.objects.all()}
    assert rows == {
        (own.pk, a.pk): "org_a",
        (everyone.pk, a.pk): "org_a",
        (everyone.pk, b.pk): "org_b",
        (probe.pk, b.pk): "org_b",
    }
    event = Event.objects.create(type="x.y", data={}, tenant_id="org_a")
    saved = Delivery.objects.create(event=event, subscription=a)
    [bulk] = Delivery.objects.bulk_create([Delivery(event=event, subscription=b)])
    assert saved.tenant_key == "org_a"
    assert Delivery.objects.get(pk=bulk.pk).tenant_key == "org_b"


def test_a_broadcast_shows_each_tenant_its_own_delivery_only(django_capture_on_commit_callbacks):
    from deliveries.services import publish

    endpoint("org_a")
    mine = endpoint("org_b", "http://127.0.0.1:9/b")
    with django_capture_on_commit_callbacks(execute=True):
        publish("notice.sent", {}, broadcast=True)
    bea = api_client(make_tenant_user("bea", "org_b"))
    listed = bea.get("/api/deliveries/?type=notice.*").json()["results"]
    assert [row["subscription"] for row in listed] == [str(mine.pk)]
