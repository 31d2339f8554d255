"""Fault tests on the broker: Redis restarted without persistence under load, and Redis down
while the API publishes. Each test runs its own redis-server (tests/procs.RedisServer) and
points this process's Celery app at it, so the session's Redis is never stopped."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest
from kombu import pools

from deliveries.models import Delivery, DeliveryStatus, Event
from tests.factories import make_subscription
from tests.fault_helpers import (
    all_succeeded,
    fault_line,
    publish_many,
    row,
    sweep_until,
    tally,
)
from tests.procs import RedisServer
from tests.receiver import Reply

pytestmark = [pytest.mark.faults, pytest.mark.integration]


def _use_broker(url: str) -> None:
    from webhooks_project.celery import app

    app.conf.broker_url = url
    # Drop the pooled connections and producers bound to the previous URL.
    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def own_redis(settings) -> Iterator[RedisServer]:
    from webhooks_project.celery import app

    previous = app.conf.broker_url
    server = RedisServer().start()
    _use_broker(server.url)
    settings.CELERY_BROKER_URL = server.url
    yield server
    _use_broker(previous)
    server.stop()


def test_redis_restart_without_persistence_loses_nothing(
    start_worker,
    receiver,
    faulty,
    own_redis,
):
    overrides = faulty()
    receiver.script("/restart", Reply(200, delay=0.2))
    make_subscription(receiver.url("/restart"))
    workers = [start_worker(broker_url=own_redis.url, concurrency=2, overrides=overrides)]
    events = publish_many(40)
    assert receiver.wait_for(3, "/restart", timeout=20)
    pending = Delivery.objects.filter(event__in=events).exclude(status=DeliveryStatus.SUCCEEDED)
    assert pending.count() > 10  # plenty still queued in Redis when it goes

    own_redis.restart()  # no persistence: every queued and unacknowledged message is gone
    restarted_at = time.monotonic()

    def supervised_and_done() -> bool:
        # Like systemd's Restart=always: kombu 5.7 can crash the worker's consumer when Redis
        # goes away while a message is unacknowledged (AttributeError in restore_unacked_once,
        # "Unrecoverable error"); the process exits and its supervisor starts it again.
        if workers[-1].proc.poll() is not None:
            crashes.append(workers[-1].output())
            workers.append(
                start_worker(broker_url=own_redis.url, concurrency=2, overrides=overrides)
            )
        return all_succeeded(events)

    crashes: list[str] = []
    assert sweep_until(supervised_and_done, timeout=90)
    result = tally(events, receiver, "/restart")
    recover = time.monotonic() - restarted_at
    name = f"redis restart ({len(crashes)} worker exit)"
    fault_line(name, **row(result), recover=recover)
    assert result["lost"] == 0
    assert result["max_posts"] <= 2


@pytest.mark.parametrize("fault", ["stopped", "frozen"])
def test_publish_with_redis_down_answers_fast_and_delivers_later(
    start_worker,
    receiver,
    faulty,
    own_redis,
    staff_client,
    fault,
):
    """`stopped`: nothing listens (connection refused at once). `frozen`: the process is
    SIGSTOPped, so the kernel still accepts the connection and nothing ever answers."""
    overrides = faulty()
    make_subscription(receiver.url("/later"))
    if fault == "stopped":
        own_redis.stop()
    else:
        own_redis.proc.send_signal(signal.SIGSTOP)

    started = time.monotonic()
    response = staff_client.post(
        "/api/events/", {"type": "order.created", "data": {"id": 1}}, format="json"
    )
    elapsed = time.monotonic() - started

    assert response.status_code == 202, response.content
    # Bounded by the broker timeouts (2 s, one retry); without them a frozen Redis holds the
    # request until the test's own 300 s timeout. A generous margin over the ~4 s floor.
    assert elapsed < 30, f"publishing took {elapsed:.1f} s with Redis {fault}"
    event = Event.objects.get(pk=response.data["id"])
    delivery = Delivery.objects.get(event=event)
    assert delivery.status == DeliveryStatus.PENDING  # stored, waiting for the sweep
    assert receiver.counts["/later"] == 0

    if fault == "stopped":
        own_redis.start()  # same port, empty
    else:
        own_redis.proc.send_signal(signal.SIGCONT)
    back_at = time.monotonic()
    start_worker(broker_url=own_redis.url, overrides=overrides)
    assert sweep_until(lambda: all_succeeded([event]), timeout=60)
    result = tally([event], receiver, "/later")
    recover = time.monotonic() - back_at
    fault_line(f"redis {fault} at publish {elapsed:.1f}s", **row(result), recover=recover)
    assert receiver.counts["/later"] == 1
