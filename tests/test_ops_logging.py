"""One structured log line per attempt: ids, status and duration; no secret, no body."""

from __future__ import annotations

import logging

import pytest

from deliveries.models import Delivery
from deliveries.services import attempt_delivery, publish
from tests.factories import make_subscription
from tests.receiver import Reply


@pytest.mark.django_db(transaction=True)
def test_one_log_line_per_attempt_with_ids_and_no_secrets(receiver, broker, caplog):
    receiver.script("/log", Reply(503, body=b"upstream body"))
    sub = make_subscription(receiver.url("/log"), headers={"Authorization": "Bearer hunter2"})
    event = publish("order.created", {"card": "4111-1111"})
    delivery = Delivery.objects.get(event=event)

    with caplog.at_level(logging.INFO, logger="deliveries.attempts"):
        attempt_delivery(delivery.pk, 1)

    records = [r for r in caplog.records if r.name == "deliveries.attempts"]
    assert len(records) == 1
    record = records[0]
    assert record.event_id == str(event.id)
    assert record.delivery_id == delivery.pk
    assert record.subscription_id == str(sub.pk)
    assert record.attempt == 1
    assert record.status_code == 503
    assert record.duration_ms >= 0
    text = record.getMessage() + repr(record.__dict__)
    for secret in (sub.secret, "hunter2", "4111-1111", "upstream body"):
        assert secret not in text
    assert f"delivery={delivery.pk}" in record.getMessage()
    assert "status=503" in record.getMessage()
