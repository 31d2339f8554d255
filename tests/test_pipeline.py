"""End to end: real Redis, a real Celery worker process, a real HTTP receiver on 127.0.0.1."""

import json

import pytest
from standardwebhooks import Webhook

from deliveries.dispatch import enqueue_attempts
from deliveries.models import Delivery, DeliveryAttempt, DeliveryStatus, ErrorKind
from deliveries.services import publish
from tests.factories import make_subscription
from tests.procs import wait_until
from tests.receiver import Reply

pytestmark = pytest.mark.integration


def statuses(event):
    return {d.subscription_id: d.status for d in Delivery.objects.filter(event=event)}


def wait_finished(event, count, timeout=30):
    finished = [DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED, DeliveryStatus.DISCARDED]
    return wait_until(
        lambda: Delivery.objects.filter(event=event, status__in=finished).count() >= count,
        timeout=timeout,
    )


def test_event_reaches_matching_subscribers_signed(worker, receiver):
    a = make_subscription(receiver.url("/a"), ["order.*"])
    b = make_subscription(receiver.url("/b"), ["order.created"])
    make_subscription(receiver.url("/c"), ["invoice.*"])

    event = publish("order.created", {"id": 42})

    assert wait_finished(event, 2)
    assert statuses(event) == {a.pk: "succeeded", b.pk: "succeeded"}
    assert receiver.wait_for(2)
    assert sorted(r.path for r in receiver.received) == ["/a", "/b"]
    for request, sub in ((receiver.requests_to("/a")[0], a), (receiver.requests_to("/b")[0], b)):
        payload = Webhook(sub.secret).verify(request.body, request.headers)
        assert payload["type"] == "order.created"
        assert payload["data"] == {"id": 42}
        assert request.headers["webhook-id"] == str(event.id)
        assert request.headers["content-type"] == "application/json"
        assert set(json.loads(request.body)) == {"type", "timestamp", "data"}


def test_500_500_200_gives_three_attempts_and_success(worker, receiver):
    receiver.script("/flaky", Reply(500), Reply(500), Reply(200))
    sub = make_subscription(receiver.url("/flaky"))
    event = publish("order.created", {})

    assert wait_finished(event, 1)
    delivery = Delivery.objects.get(event=event)
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert delivery.attempts == 3
    attempts = list(delivery.attempt_set.order_by("number"))
    assert [a.response_status for a in attempts] == [500, 500, 200]
    ids = {r.headers["webhook-id"] for r in receiver.requests_to("/flaky")}
    assert ids == {str(event.id)}  # stable across retries
    for request in receiver.requests_to("/flaky"):
        Webhook(sub.secret).verify(request.body, request.headers)


def test_400_fails_after_one_attempt(worker, receiver):
    receiver.script("/reject", Reply(400, body=b"bad payload"))
    make_subscription(receiver.url("/reject"))
    event = publish("order.created", {})

    assert wait_finished(event, 1)
    delivery = Delivery.objects.get(event=event)
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == 1
    assert delivery.last_status_code == 400
    attempt = delivery.attempt_set.get()
    assert attempt.response_body == "bad payload"
    assert attempt.error_kind == ErrorKind.HTTP_STATUS


def test_receiver_that_never_answers_times_out_and_retries(start_worker, receiver):
    start_worker(overrides={"TIMEOUT": 1, "RETRY_SCHEDULE": [0, 0.2]})
    receiver.script("/slow", Reply(200, delay=5))
    make_subscription(receiver.url("/slow"))
    event = publish("order.created", {})

    assert wait_finished(event, 1, timeout=20)
    delivery = Delivery.objects.get(event=event)
    assert delivery.status == DeliveryStatus.FAILED
    attempts = list(delivery.attempt_set.order_by("number"))
    assert [a.error_kind for a in attempts] == [ErrorKind.TIMEOUT, ErrorKind.TIMEOUT]
    assert all(a.response_status is None for a in attempts)
    assert all(900 <= a.duration_ms < 3000 for a in attempts)


def test_refused_connection_retries_without_crashing(worker, receiver):
    from tests.procs import free_port

    make_subscription(f"http://127.0.0.1:{free_port()}/nobody")
    event = publish("order.created", {})

    assert wait_finished(event, 1)
    delivery = Delivery.objects.get(event=event)
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == 5  # the test schedule's length
    assert set(delivery.attempt_set.values_list("error_kind", flat=True)) == {ErrorKind.CONNECTION}


def test_duplicated_message_sends_one_post(start_worker, receiver):
    # Enqueue the same first attempt five times before any worker runs.
    sub = make_subscription(receiver.url("/once"))
    from django.db import transaction

    with transaction.atomic():
        event = publish("order.created", {})
    delivery = Delivery.objects.get(event=event)
    assert enqueue_attempts([(delivery.pk, 1)] * 4) == 4
    start_worker(concurrency=4)

    assert wait_finished(event, 1)
    assert not receiver.wait_for(2, timeout=2)
    assert receiver.counts["/once"] == 1
    assert DeliveryAttempt.objects.filter(delivery__subscription=sub).count() == 1
