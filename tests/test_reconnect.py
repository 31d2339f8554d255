"""A PostgreSQL connection that dies between deliveries, or while one waits on its receiver,
costs nothing: the delivery path replaces it once (deliveries/services/connections.py), which is
what lets the reference settings run the worker's pool without a health check per checkout."""

from __future__ import annotations

import threading

import psycopg
import pytest
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from deliveries.models import Delivery, DeliveryAttempt, DeliveryStatus, Event
from deliveries.services.attempts import attempt_delivery
from deliveries.services.connections import reconnecting
from tests.factories import make_subscription
from tests.receiver import Reply

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'postgresql'"),
]


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _terminate(pid: int) -> None:
    """Kill a server backend from another connection, as a restart or an admin would."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", (pid,))


def _delivery(url: str) -> Delivery:
    event = Event.objects.create(type="order.created", data={"n": 1}, fanned_out_at=timezone.now())
    return Delivery.objects.create(
        event=event, subscription=make_subscription(url), next_attempt_at=timezone.now()
    )


def test_a_connection_killed_between_deliveries_is_replaced(receiver):
    delivery = _delivery(receiver.url("/a"))
    _terminate(_backend_pid())
    assert attempt_delivery(delivery.pk, 1).action == "done"
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert len(receiver.requests_to("/a")) == 1


def test_a_connection_killed_while_waiting_on_the_receiver_still_records_once(receiver):
    receiver.script("/slow", Reply(delay=1.0))
    delivery = _delivery(receiver.url("/slow"))
    pid = _backend_pid()

    def kill_when_the_request_arrives() -> None:
        assert receiver.wait_for(1, "/slow", timeout=10)
        _terminate(pid)

    killer = threading.Thread(target=kill_when_the_request_arrives)
    killer.start()
    outcome = attempt_delivery(delivery.pk, 1)
    killer.join(10)
    assert outcome.action == "done"
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED and delivery.attempts == 1
    assert DeliveryAttempt.objects.filter(delivery=delivery).count() == 1
    assert _backend_pid() != pid


def test_an_error_on_a_live_connection_is_not_run_again():
    calls = []

    def fails() -> None:
        calls.append(1)
        raise OperationalError("lock timeout")

    _backend_pid()
    with pytest.raises(OperationalError):
        reconnecting(fails)
    assert calls == [1]


def test_inside_a_transaction_a_dead_connection_is_not_papered_over():
    pid = _backend_pid()
    with pytest.raises(OperationalError), transaction.atomic():
        _terminate(pid)
        reconnecting(_backend_pid)
    connection.close()
