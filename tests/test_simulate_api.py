"""POST /api/subscriptions/simulate/: what a draft subscription would have received from its
tenant's recent events (DESIGN.md, HTTP API)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from deliveries.models import Event
from tests.factories import api_client, make_subscription, make_tenant_user, make_user

pytestmark = pytest.mark.django_db

URL = "/api/subscriptions/simulate/"


def event(tenant, type, data=None, channels=(), age=0, **fields):
    return Event.objects.create(
        tenant_id=tenant,
        type=type,
        data=data or {},
        channels=list(channels),
        created_at=timezone.now() - dt.timedelta(seconds=age),
        **fields,
    )


@pytest.fixture
def history():
    from subscriptions.models import Tenant

    for key in ("org_a", "org_b"):
        Tenant.objects.for_key(key)
    return {
        "big": event("org_a", "order.created", {"total": 500}, ["eu"], age=1),
        "small": event("org_a", "order.created", {"total": 5}, ["eu"], age=2),
        "paid": event("org_a", "order.paid", {"total": 900}, age=3),
        "user": event("org_a", "user.signed_up", {"total": 900}, ["us"], age=4),
        "old": event("org_a", "order.created", {"total": 700}, age=50),
        "theirs": event("org_b", "order.created", {"total": 500}, ["eu"], age=1),
    }


def ids(response):
    return [e["id"] for e in response.data["events"]]


def test_a_tenant_user_sees_what_the_draft_would_have_received(history):
    client = api_client(make_tenant_user("a", "org_a"))
    response = client.post(
        URL,
        {"event_types": ["order.*"], "filter": {"data.total": {"$gte": 100}}, "limit": 4},
        format="json",
    )
    assert response.status_code == 200, response.data
    # Newest first, within the tenant's last 4 events; "old" is outside the window and
    # org_b's event is never looked at.
    assert ids(response) == [str(history["big"].pk), str(history["paid"].pk)]
    assert response.data["count"] == 2 and response.data["examined"] == 4
    assert response.data["tenant"] == "org_a"
    first = response.data["events"][0]
    assert set(first) == {"id", "type", "created", "channels", "data"}
    assert first["created"].endswith("Z") and first["channels"] == ["eu"]


def test_channels_and_types_select_as_the_fan_out_does(history):
    client = api_client(make_tenant_user("a", "org_a"))
    by_channel = client.post(URL, {"event_types": ["*"], "channels": ["us", "ap"]}, format="json")
    assert ids(by_channel) == [str(history["user"].pk)]
    exact = client.post(URL, {"event_types": ["order.paid"], "limit": 100}, format="json")
    assert ids(exact) == [str(history["paid"].pk)]
    everything = client.post(URL, {"event_types": ["*"], "limit": 100}, format="json")
    assert everything.data["count"] == 5


def test_the_simulation_agrees_with_the_fan_out(history, django_capture_on_commit_callbacks):
    from deliveries.models import Delivery
    from deliveries.services import publish

    draft = {"event_types": ["order.*"], "filter": {"data.total": {"$lt": 600}}, "channels": []}
    sub = make_subscription(
        "http://127.0.0.1:9/x", draft["event_types"], tenant="org_a", filter=draft["filter"]
    )
    with django_capture_on_commit_callbacks(execute=True):
        for total in (1, 599, 600, 1000):
            publish("order.created", {"total": total}, tenant="org_a")
    received = set(Delivery.objects.filter(subscription=sub).values_list("event_id", flat=True))
    client = api_client(make_tenant_user("a", "org_a"))
    response = client.post(URL, {**draft, "limit": 4}, format="json")
    assert {e["id"] for e in response.data["events"]} == {str(pk) for pk in received}
    assert response.data["count"] == 2


def test_a_tenant_user_never_sees_another_tenants_events(history):
    client = api_client(make_tenant_user("a", "org_a"))
    refused = client.post(URL, {"event_types": ["*"], "tenant": "org_b"}, format="json")
    assert refused.status_code == 400 and set(refused.data) == {"tenant"}
    own = client.post(URL, {"event_types": ["*"], "tenant": "org_a"}, format="json")
    assert str(history["theirs"].pk) not in ids(own)


def test_a_permission_holder_names_the_tenant(history):
    operator = api_client(make_user("op", "view_event"))
    response = operator.post(URL, {"event_types": ["*"], "tenant": "org_b"}, format="json")
    assert ids(response) == [str(history["theirs"].pk)]
    # Without one: the default tenant's (none here).
    assert operator.post(URL, {"event_types": ["*"]}, format="json").data["count"] == 0


def test_strangers_are_refused(history):
    from rest_framework.test import APIClient

    assert APIClient().post(URL, {"event_types": ["*"]}, format="json").status_code in (401, 403)
    nobody = api_client(make_user("nobody"))
    assert nobody.post(URL, {"event_types": ["*"]}, format="json").status_code == 403


def test_test_events_are_not_simulated(history):
    sub = make_subscription("http://127.0.0.1:9/x", ["*"], tenant="org_a")
    probe = event("org_a", "webhook.test", target_subscription=sub)
    client = api_client(make_tenant_user("a", "org_a"))
    response = client.post(URL, {"event_types": ["*"], "limit": 100}, format="json")
    assert str(probe.pk) not in ids(response)


@pytest.mark.parametrize(
    "body, field, text",
    [
        ({"event_types": ["*"], "limit": 0}, "limit", ""),
        ({"event_types": ["*"], "limit": 101}, "limit", ""),
        ({"event_types": []}, "event_types", ""),
        ({"event_types": ["order created"]}, "event_types", "not an event type"),
        ({"event_types": ["*"], "filter": {"data.x": {"$in": []}}}, "filter", "data.x > $in"),
        ({"event_types": ["*"], "channels": ["a b"]}, "channels", "[0]"),
    ],
)
def test_bad_input_is_a_field_error(history, body, field, text):
    client = api_client(make_tenant_user("a", "org_a"))
    response = client.post(URL, body, format="json")
    assert response.status_code == 400
    assert set(response.data) == {field}
    assert text in " ".join(str(m) for m in response.data[field])


def test_simulations_are_throttled(history, webhooks):
    webhooks(THROTTLE_RATES={"simulate": "2/minute"})
    client = api_client(make_tenant_user("a", "org_a"))
    codes = [client.post(URL, {"event_types": ["*"]}, format="json").status_code for _ in range(3)]
    assert codes == [200, 200, 429]
