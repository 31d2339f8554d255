"""The publishing endpoint and staff subscription creation."""

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from deliveries.models import Delivery, Event
from subscriptions.models import Subscription
from tests.factories import make_subscription

pytestmark = pytest.mark.django_db


def test_publish_answers_202_with_id_and_delivery_count(
    staff_client, django_capture_on_commit_callbacks
):
    make_subscription("http://127.0.0.1:9/a", ["order.*"])
    make_subscription("http://127.0.0.1:9/b", ["invoice.*"])
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            "/api/events/", {"type": "order.created", "data": {"id": 1}}, format="json"
        )
    assert response.status_code == 202, response.content
    assert response.json()["deliveries"] == 1
    assert response.json()["skipped"] == 0
    assert Event.objects.get(pk=response.json()["id"]).data == {"id": 1}


def test_publish_answers_how_many_deliveries_are_skipped_for_disabled_endpoints(
    staff_client, django_capture_on_commit_callbacks
):
    # Issue 28: the only endpoints are disabled; 2 skipped deliveries are recorded (and later
    # offered for replay): the answer says so beside "deliveries": 0.
    make_subscription("http://127.0.0.1:9/a", ["order.*"], is_active=False)
    make_subscription("http://127.0.0.1:9/b", ["*"], is_active=False)
    make_subscription("http://127.0.0.1:9/c", ["invoice.*"], is_active=False)
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            "/api/events/",
            {"type": "order.created", "data": {"id": 1}},
            format="json",
            HTTP_IDEMPOTENCY_KEY="skip-1",
        )
    assert response.status_code == 202, response.content
    assert (response.json()["deliveries"], response.json()["skipped"]) == (0, 2)
    assert Delivery.objects.filter(status="skipped").count() == 2
    # The same key again: the first event, counted from its rows.
    again = staff_client.post(
        "/api/events/",
        {"type": "order.created", "data": {"id": 1}},
        format="json",
        HTTP_IDEMPOTENCY_KEY="skip-1",
    )
    assert again.json()["duplicate"] is True
    assert (again.json()["deliveries"], again.json()["skipped"]) == (0, 2)


def test_idempotency_key_header_returns_the_first_event(staff_client):
    first = staff_client.post(
        "/api/events/", {"type": "a.b", "data": {}}, format="json", HTTP_IDEMPOTENCY_KEY="k1"
    )
    again = staff_client.post(
        "/api/events/", {"type": "a.b", "data": {}}, format="json", HTTP_IDEMPOTENCY_KEY="k1"
    )
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    assert again.json()["duplicate"] is True
    assert Event.objects.count() == 1


def test_too_long_idempotency_key_header_is_a_400_not_a_500(staff_client):
    # The header obeys the body field's limit; PostgreSQL would refuse the row with a 500.
    response = staff_client.post(
        "/api/events/", {"type": "a.b", "data": {}}, format="json", HTTP_IDEMPOTENCY_KEY="k" * 256
    )
    assert response.status_code == 400, response.content
    assert "idempotency_key" in response.json()
    assert Event.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"data": {}}, "type"),
        ({"type": "a.b"}, "data"),
        ({"type": "not valid!", "data": {}}, "type"),
        ({"type": "a.b", "data": [1, 2]}, "data"),
    ],
)
def test_malformed_publish_is_a_400_with_field_errors(staff_client, body, field):
    response = staff_client.post("/api/events/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert Event.objects.count() == 0


def test_oversized_payload_is_a_413(staff_client, settings):
    settings.WEBHOOKS = {**settings.WEBHOOKS, "MAX_PAYLOAD_BYTES": 64}
    response = staff_client.post(
        "/api/events/", {"type": "a.b", "data": {"x": "y" * 100}}, format="json"
    )
    assert response.status_code == 413
    assert "data" in response.json()


def test_publishing_needs_the_add_event_permission(django_user_model):
    user = django_user_model.objects.create_user("producer", password="pw")
    client = APIClient()
    client.force_authenticate(user)
    assert (
        client.post("/api/events/", {"type": "a.b", "data": {}}, format="json").status_code == 403
    )
    user.user_permissions.add(Permission.objects.get(codename="add_event"))
    user = django_user_model.objects.get(pk=user.pk)
    client.force_authenticate(user)
    assert (
        client.post("/api/events/", {"type": "a.b", "data": {}}, format="json").status_code == 202
    )
    assert APIClient().post(
        "/api/events/", {"type": "a.b", "data": {}}, format="json"
    ).status_code in (
        401,
        403,
    )


def test_staff_creates_a_subscription_and_gets_its_secret_once(staff_client):
    response = staff_client.post(
        "/api/subscriptions/",
        {"url": "http://127.0.0.1:9/hook", "event_types": ["order.*"]},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["secret"].startswith("whsec_")
    subscription = Subscription.objects.get(pk=body["id"])
    assert subscription.secret == body["secret"]
    listed = staff_client.get("/api/subscriptions/").json()
    assert "secret" not in listed["results"][0]
    assert "secret" not in staff_client.get(f"/api/subscriptions/{body['id']}/").json()


def test_delivery_list_filters_and_rejects_bad_filters(
    staff_client, django_capture_on_commit_callbacks
):
    sub = make_subscription("http://127.0.0.1:9/a")
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post("/api/events/", {"type": "a.b", "data": {}}, format="json")
    assert Delivery.objects.count() == 1
    listed = staff_client.get(
        "/api/deliveries/", {"subscription": str(sub.pk), "status": "pending"}
    )
    assert listed.status_code == 200 and len(listed.json()["results"]) == 1
    assert staff_client.get("/api/deliveries/", {"status": "nope"}).status_code == 400
    assert staff_client.get("/api/deliveries/", {"subscription": "x"}).status_code == 400
