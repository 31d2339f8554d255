"""Manual retries send once and say when an attempt is already on its way (409); enabling an
endpoint again tells the API caller what it missed and how to replay it, and the default
replay covers the time it was disabled."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from deliveries.models import Delivery, DeliveryStatus
from deliveries.services import publish, replay
from subscriptions import services
from tests.factories import make_subscription, make_tenant_user
from tests.ops_helpers import make_delivery
from tests.procs import wait_until

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    client = APIClient()
    client.force_authenticate(make_tenant_user("owner", "org_a"))
    return client


def retry(api: APIClient, delivery: Delivery) -> int:
    return api.post(f"/api/deliveries/{delivery.pk}/retry/").status_code


def test_a_retry_while_the_previous_one_is_queued_answers_409(api):
    delivery = make_delivery(make_subscription("http://127.0.0.1:9/h", tenant="org_a"))

    assert retry(api, delivery) == 202
    second = api.post(f"/api/deliveries/{delivery.pk}/retry/")

    assert second.status_code == 409
    assert "already queued" in second.json()["detail"]
    assert Delivery.objects.get(pk=delivery.pk).status == DeliveryStatus.RETRYING


@pytest.mark.parametrize(
    ("status", "due_in", "expected"),
    [
        (DeliveryStatus.SENDING, 0, 409),
        (DeliveryStatus.PENDING, 0, 409),
        (DeliveryStatus.RETRYING, 3, 409),  # its Celery retry message is on its way
        (DeliveryStatus.RETRYING, 3600, 202),  # parked for later: "send again now" sends now
        (DeliveryStatus.SUCCEEDED, None, 202),
        (DeliveryStatus.DISCARDED, None, 202),
    ],
)
def test_a_retry_is_refused_only_while_an_attempt_is_queued_or_in_flight(
    api, status, due_in, expected
):
    due = None if due_in is None else timezone.now() + dt.timedelta(seconds=due_in)
    delivery = make_delivery(
        make_subscription("http://127.0.0.1:9/h", tenant="org_a"), status, next_attempt_at=due
    )

    assert retry(api, delivery) == expected


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_of_one_delivery_queue_one_attempt():
    """Eight threads, each with its own database connection, retry the same delivery."""
    delivery = make_delivery(make_subscription("http://127.0.0.1:9/h"))
    barrier = threading.Barrier(8)
    queued: list[int] = []
    refused: list[str] = []

    def click() -> None:
        try:
            barrier.wait()
            queued.append(replay.redeliver_one(delivery))
        except replay.ReplayError as exc:
            refused.append(exc.message)
        finally:
            connection.close()

    threads = [threading.Thread(target=click) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert queued == [1] and len(refused) == 7


@pytest.mark.integration
def test_five_quick_retries_send_once(worker, receiver, api):
    sub = make_subscription(receiver.url("/once"), tenant="org_a")
    delivery = make_delivery(sub, DeliveryStatus.FAILED)

    codes = [retry(api, delivery) for _ in range(5)]

    assert codes[0] == 202 and set(codes[1:]) <= {409, 202}
    assert wait_until(
        lambda: Delivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.SUCCEEDED).exists(),
        timeout=30,
    ), worker.output()
    # Every retry answered 202 was a new attempt after the previous one ended: as many POSTs.
    assert wait_until(lambda: receiver.counts["/once"] == codes.count(202), timeout=10)
    assert Delivery.objects.get(pk=delivery.pk).attempts == codes.count(202)


def test_enabling_through_the_api_says_what_was_held_and_how_to_replay_it(
    api, django_capture_on_commit_callbacks, broker
):
    sub = make_subscription("http://127.0.0.1:9/h", tenant="org_a")
    assert services.disable_subscription(sub, "maintenance")
    # Published while it was disabled: recorded as skipped, as the publish answer counts.
    with django_capture_on_commit_callbacks(execute=True):
        events = [publish("order.created", {"n": n}, tenant="org_a") for n in range(3)]
    assert Delivery.objects.filter(event__in=events, status=DeliveryStatus.SKIPPED).count() == 3

    response = api.patch(f"/api/subscriptions/{sub.pk}/", {"is_active": True}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["is_active"] is True and body["held_while_disabled"] == 3
    assert body["replay"]["status"] == ["skipped", "discarded", "failed"]
    # Replaying with the offered `since` and the default statuses covers the disabled period.
    replayed = api.post(
        f"/api/subscriptions/{sub.pk}/replay/", {"since": body["replay"]["since"]}, format="json"
    )
    assert replayed.status_code == 202, replayed.content
    assert replayed.json()["queued"] == 3


def test_an_answer_that_enables_nothing_carries_no_offer(api):
    sub = make_subscription("http://127.0.0.1:9/h", tenant="org_a")

    body = api.patch(f"/api/subscriptions/{sub.pk}/", {"is_active": True}, format="json").json()

    assert "held_while_disabled" not in body
    services.disable_subscription(sub, "maintenance")
    body = api.patch(f"/api/subscriptions/{sub.pk}/", {"is_active": True}, format="json").json()
    assert (body["held_while_disabled"], body["replay"]) == (0, None)
