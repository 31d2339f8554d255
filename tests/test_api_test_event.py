"""Test events through the API and the admin: signed, to one subscription only, recorded."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient
from standardwebhooks import Webhook

from deliveries.models import Delivery, DeliveryStatus, Event
from tests.factories import make_subscription, make_tenant_user
from tests.procs import wait_until

pytestmark = pytest.mark.integration


def test_test_event_reaches_only_its_subscription(worker, receiver, django_user_model):
    owner = make_tenant_user("owner", "default")
    target = make_subscription(receiver.url("/target"), ["order.*"], owner=owner)
    make_subscription(receiver.url("/bystander"), ["*"], owner=owner)
    api = APIClient()
    api.force_authenticate(owner)

    response = api.post(f"/api/subscriptions/{target.pk}/test/")

    assert response.status_code == 202, response.content
    body = response.json()
    assert body["type"] == "webhook.test" and body["deliveries"] == 1
    assert receiver.wait_for(1, "/target")
    request = receiver.requests_to("/target")[0]
    payload = Webhook(target.secret).verify(request.body, request.headers)
    assert payload["type"] == "webhook.test"
    assert payload["data"]["subscription"] == str(target.pk)
    assert request.headers["webhook-id"] == body["id"]
    # Recorded like any delivery, and nobody else received it.
    assert wait_until(
        lambda: (
            Delivery.objects.filter(event_id=body["id"], status=DeliveryStatus.SUCCEEDED)
            .filter(subscription=target)
            .exists()
        )
    )
    assert Delivery.objects.filter(event_id=body["id"]).count() == 1
    assert not receiver.wait_for(1, "/bystander", timeout=1)


def test_admin_action_sends_test_events(worker, receiver, client, django_user_model):
    admin_user = django_user_model.objects.create_superuser("root", "r@example.com", "pw")
    client.force_login(admin_user)
    first = make_subscription(receiver.url("/one"), ["order.created"])
    second = make_subscription(receiver.url("/two"), ["invoice.*"])
    disabled = make_subscription(receiver.url("/off"), ["*"], is_active=False)

    response = client.post(
        "/admin/webhook_subscriptions/subscription/",
        {
            "action": "send_test_events",
            "_selected_action": [str(s.pk) for s in (first, second, disabled)],
        },
        follow=True,
    )

    assert response.status_code == 200
    text = response.content.decode()
    assert "Sent a test event to 2 subscriptions" in text
    assert "1 disabled subscription was skipped" in text
    assert receiver.wait_for(1, "/one") and receiver.wait_for(1, "/two")
    for path, sub in (("/one", first), ("/two", second)):
        request = receiver.requests_to(path)[0]
        assert Webhook(sub.secret).verify(request.body, request.headers)["type"] == "webhook.test"
    assert Event.objects.filter(type="webhook.test").count() == 2
    assert not Delivery.objects.filter(subscription=disabled).exists()
