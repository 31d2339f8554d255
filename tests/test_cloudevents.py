"""Payload formats and custom headers, end to end with a real worker and receiver."""

from __future__ import annotations

import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_http_event
from rest_framework.test import APIClient
from standardwebhooks import Webhook

from deliveries.models import Delivery, DeliveryStatus
from deliveries.services import publish
from subscriptions.models import EventType, Subscription
from tests.factories import make_subscription, make_tenant_user
from tests.procs import wait_until

try:  # the 1.x API, kept in 2.x under cloudevents.v1
    from cloudevents.http import from_http as legacy_from_http
except ImportError:
    from cloudevents.v1.http import from_http as legacy_from_http

pytestmark = pytest.mark.integration


def delivered(event, count=1) -> bool:
    done = Delivery.objects.filter(event=event, status=DeliveryStatus.SUCCEEDED)
    return done.count() >= count


def test_cloudevents_delivery_parses_with_the_sdk(worker, receiver, settings):
    sub = make_subscription(receiver.url("/ce"), ["order.*"], payload_format="cloudevents")
    data = {"id": 42, "total": "9.90", "items": [{"sku": "A-1"}], "note": "caf\u00e9"}

    event = publish("order.created", data)

    assert wait_until(lambda: delivered(event))
    request = receiver.requests_to("/ce")[0]
    assert request.headers["content-type"] == "application/cloudevents+json"
    # The SDK's HTTP reader (structured mode, detected from the headers and body).
    cloud_event = from_http_event(HTTPMessage(headers=request.headers, body=request.body))
    assert cloud_event.get_specversion() == "1.0"
    assert cloud_event.get_id() == str(event.id)
    assert cloud_event.get_type() == "order.created"
    assert cloud_event.get_source() == "/webhooks"
    assert cloud_event.get_datacontenttype() == "application/json"
    assert abs((cloud_event.get_time() - event.created_at).total_seconds()) < 0.001
    assert cloud_event.get_data() == data
    # The 1.x reader agrees.
    legacy = legacy_from_http(request.headers, request.body)
    assert (legacy["id"], legacy["type"], legacy.data) == (str(event.id), "order.created", data)
    # Signed the same way as the standard format.
    assert Webhook(sub.secret).verify(request.body, request.headers)["data"] == data


def test_custom_headers_are_sent_and_redacted_in_history(worker, receiver, django_user_model):
    EventType.objects.create(name="order.created")
    owner = make_tenant_user("owner", "default")
    api = APIClient()
    api.force_authenticate(owner)
    created = api.post(
        "/api/subscriptions/",
        {
            "url": receiver.url("/headers"),
            "event_types": ["order.created"],
            "headers": {"Authorization": "Bearer t0k3n", "X-Tenant": "acme"},
        },
        format="json",
    )
    assert created.status_code == 201, created.content

    event = publish("order.created", {"n": 1})

    assert wait_until(lambda: delivered(event))
    request = receiver.requests_to("/headers")[0]
    assert request.headers["Authorization"] == "Bearer t0k3n"
    assert request.headers["X-Tenant"] == "acme"
    # Our own headers are still ours, and the signature verifies.
    assert request.headers["content-type"] == "application/json"
    secret = Subscription.objects.get(pk=created.json()["id"]).secret
    Webhook(secret).verify(request.body, request.headers)
    attempt = Delivery.objects.get(event=event).attempt_set.get()
    # Every custom header value is masked on the attempt row, whatever its name; ours are not.
    assert attempt.request_headers["Authorization"] == "[redacted]"
    assert attempt.request_headers["X-Tenant"] == "[redacted]"
    assert attempt.request_headers["webhook-id"] == str(event.id)
