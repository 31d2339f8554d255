"""The performance paths: connection reuse in workers, pipelined enqueueing, large
fan-outs moved off the publishing request. Behaviour, not timing (bench/ measures speed)."""

import base64
import json

import pytest
from celery.fixups.django import DjangoWorkerFixup

from deliveries.dispatch import enqueue_attempts
from deliveries.models import Delivery, DeliveryStatus, Event
from deliveries.services import publish, publish_event
from tests.factories import make_subscription
from tests.procs import wait_until

pytestmark = pytest.mark.django_db


def queued(broker, queue):
    """(task name, args) of every message waiting in a Redis queue, oldest first."""
    from webhooks_project.celery import app

    with app.connection_for_write() as conn:
        raw = conn.default_channel.client.lrange(queue, 0, -1)
    out = []
    for item in reversed(raw):
        message = json.loads(item)
        body = json.loads(base64.b64decode(message["body"]))
        out.append((message["headers"]["task"], body[0]))
    return out


def test_celery_django_fixup_keeps_database_connections():
    # The fixup reads `CELERY_DB_REUSE_MAX`; without it every task opens a new connection.
    from webhooks_project.celery import app

    assert DjangoWorkerFixup(app).db_reuse_max >= 100


def test_enqueue_sends_every_message_in_pipelined_chunks(broker, settings):
    settings.WEBHOOKS = {**settings.WEBHOOKS, "ENQUEUE_CHUNK": 3}

    sent = enqueue_attempts([(1, 1), (2, 1), (3, 2), (4, 1), (5, 1), (6, 3), (7, 1)])

    assert sent == 7
    assert queued(broker, "webhooks") == [
        ("deliveries.tasks.deliver", [pk, 1]) for pk in (1, 2, 4, 5, 7)
    ]
    assert queued(broker, "webhooks.retry") == [
        ("deliveries.tasks.deliver", [3, 2]),
        ("deliveries.tasks.deliver", [6, 3]),
    ]


def test_enqueue_with_the_broker_down_returns_without_raising(broker):
    broker.stop()
    try:
        assert enqueue_attempts([(1, 1), (2, 1)]) == 0
    finally:
        broker.start()


def test_small_fan_out_runs_inline(broker, settings, django_capture_on_commit_callbacks):
    settings.WEBHOOKS = {**settings.WEBHOOKS, "FAN_OUT_INLINE_MAX": 2}
    for i in range(2):
        make_subscription(f"http://127.0.0.1:9/{i}", ["order.*"])

    with django_capture_on_commit_callbacks(execute=True):
        publication = publish_event("order.created", {"id": 1})
    event = publication.event

    assert publication.deliveries == 2
    assert Delivery.objects.filter(event=event, status=DeliveryStatus.PENDING).count() == 2
    assert [name for name, _ in queued(broker, "webhooks")] == ["deliveries.tasks.deliver"] * 2


@pytest.mark.django_db(transaction=True)
def test_large_fan_out_is_handed_to_a_task_and_the_api_still_counts(broker, settings, staff_client):
    settings.WEBHOOKS = {**settings.WEBHOOKS, "FAN_OUT_INLINE_MAX": 2}
    for i in range(3):
        make_subscription(f"http://127.0.0.1:9/{i}", ["order.*"])
    make_subscription("http://127.0.0.1:9/off", ["order.*"], is_active=False)
    make_subscription("http://127.0.0.1:9/other", ["invoice.*"])

    # Autocommit, as in production: the on-commit fan-out decision runs inside the request.
    response = staff_client.post(
        "/api/events/", {"type": "order.created", "data": {"id": 1}}, format="json"
    )

    assert response.status_code == 202
    assert response.data["deliveries"] == 3
    event = Event.objects.get(pk=response.data["id"])
    assert event.fanned_out_at is None
    assert not Delivery.objects.filter(event=event).exists()
    assert queued(broker, "webhooks.maintenance") == [("deliveries.tasks.fan_out", [str(event.pk)])]
    assert queued(broker, "webhooks") == []


@pytest.mark.integration
def test_background_fan_out_delivers_each_subscriber_once(start_worker, receiver, settings):
    settings.WEBHOOKS = {**settings.WEBHOOKS, "FAN_OUT_INLINE_MAX": 2}
    subs = [make_subscription(receiver.url(f"/s{i}"), ["order.*"]) for i in range(5)]
    start_worker(overrides={"FAN_OUT_INLINE_MAX": 2})

    publication = publish_event("order.created", {"id": 9})
    event = publication.event

    assert publication.deliveries == 5
    assert wait_until(
        lambda: Delivery.objects.filter(event=event, status=DeliveryStatus.SUCCEEDED).count() == 5,
        timeout=30,
    )
    assert receiver.wait_for(5)
    assert sorted(r.path for r in receiver.received) == sorted(f"/s{i}" for i in range(5))
    assert len(subs) == 5


@pytest.mark.django_db(transaction=True)
def test_pooled_connection_is_released_outside_transactions_only(monkeypatch):
    from django.db import connections

    from deliveries.services.connections import release_pooled_connection

    connection = connections["default"]
    closed = []
    connection.ensure_connection()
    monkeypatch.setattr(connection, "close", lambda: closed.append(True))

    release_pooled_connection()
    assert closed == []  # no pool: kept, reconnecting would cost more

    monkeypatch.setitem(connection.settings_dict, "OPTIONS", {"pool": {"max_size": 2}})
    connection.in_atomic_block = True
    try:
        release_pooled_connection()
    finally:
        connection.in_atomic_block = False
    assert closed == []  # never in the middle of a transaction

    release_pooled_connection()
    assert closed == [True]  # pooled and idle: handed back


@pytest.mark.integration
def test_many_deliveries_in_flight_share_a_bounded_number_of_connections(start_worker, receiver):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the connection pool is PostgreSQL's (psycopg_pool)")
    from tests.receiver import Reply

    held = 2.0  # seconds the receiver holds each request: under the test settings' 3 s TIMEOUT
    subs = [make_subscription(receiver.url(f"/slow{i}"), ["order.*"]) for i in range(12)]
    for i in range(12):
        receiver.script(f"/slow{i}", Reply(200, delay=held))
    start_worker(concurrency=12, extra_env={"DATABASE_POOL_MAX_SIZE": "2"})
    database = connection.settings_dict["NAME"]

    def backends() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> "
                "pg_backend_pid()",
                [database],
            )
            return cursor.fetchone()[0]

    event = publish("order.created", {"id": 3})
    assert wait_until(lambda: len(receiver.received) >= 8, timeout=20)
    in_flight_connections = backends()  # many requests waiting on the receiver right now

    arrivals = sorted(r.at for r in receiver.received)
    assert in_flight_connections <= 2
    # Requests were in flight together, not two at a time behind the two connections: the
    # eighth arrived before the first was answered (an order, not a wall-clock bound).
    assert arrivals[7] < arrivals[0] + held
    assert wait_until(
        lambda: (
            Delivery.objects.filter(event=event, status=DeliveryStatus.SUCCEEDED).count()
            == len(subs)
        ),
        timeout=30,
    )


@pytest.mark.django_db(transaction=True)
def test_large_fan_out_with_the_broker_down_still_answers_and_leaves_it_to_the_sweep(
    broker, settings
):
    settings.WEBHOOKS = {**settings.WEBHOOKS, "FAN_OUT_INLINE_MAX": 1}
    for i in range(2):
        make_subscription(f"http://127.0.0.1:9/{i}", ["order.*"])
    broker.stop()
    try:
        publication = publish_event("order.created", {"id": 5})
    finally:
        broker.start()
    event = publication.event

    assert publication.deliveries == 2
    event.refresh_from_db()
    assert event.fanned_out_at is None  # the sweep's not_fanned_out() finds it
