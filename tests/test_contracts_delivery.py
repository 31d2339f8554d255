"""Pinned versions end to end: a real worker sends each subscription its version of one event,
signed, and the body says which version it is."""

from __future__ import annotations

import json

import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_http_event
from standardwebhooks import Webhook

from deliveries.models import Delivery, DeliveryStatus
from deliveries.services import publish
from tests.contract_types import NAME, an_order
from tests.factories import make_subscription
from tests.procs import wait_until

pytestmark = pytest.mark.integration


def test_each_subscriber_receives_the_version_it_is_pinned_to(worker, receiver, contract_types):
    on_v1 = make_subscription(receiver.url("/v1"), [NAME], versions={NAME: 1})
    on_v3 = make_subscription(receiver.url("/v3"), ["shop.*"], versions={NAME: 3})
    cloud = make_subscription(
        receiver.url("/ce"), [NAME], versions={NAME: 2}, payload_format="cloudevents"
    )

    event = publish(NAME, an_order())

    done = Delivery.objects.filter(event=event, status=DeliveryStatus.SUCCEEDED)
    assert wait_until(lambda: done.count() == 3)
    v1 = receiver.requests_to("/v1")[0]
    body = Webhook(on_v1.secret).verify(v1.body, v1.headers)
    assert body["version"] == 1
    assert body["data"] == {"id": 1001, "amount_cents": 4200}
    v3 = receiver.requests_to("/v3")[0]
    body = Webhook(on_v3.secret).verify(v3.body, v3.headers)
    assert body["version"] == 3 and body["data"]["lines"][0] == {"sku": "A-1", "qty": 2}
    ce = receiver.requests_to("/ce")[0]
    Webhook(cloud.secret).verify(ce.body, ce.headers)
    cloud_event = from_http_event(HTTPMessage(headers=ce.headers, body=ce.body))
    assert cloud_event.get_dataschema() == f"urn:webhooks:schema:{NAME}:v2"
    assert cloud_event.get_data() == event.renditions["2"]
    # Every delivery records what it sent.
    assert dict(done.values_list("subscription_id", "version")) == {
        on_v1.pk: 1,
        on_v3.pk: 3,
        cloud.pk: 2,
    }
    assert json.loads(v1.body)["type"] == NAME
