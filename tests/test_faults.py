"""Fault tests: real Celery worker processes, a real receiver, real kills.

Each run prints one line (and appends it to var/fault-runs.txt) with deliveries sent, delivered,
lost, duplicated (POSTed more than once) and the time from the fault to the last delivery; run
with `pytest -m faults -s` to see them. The sweep is driven from the test process (as beat would
call it), with the same small STALE_SENDING_AFTER / SWEEP_GRACE as the workers.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from django.db import transaction

from deliveries.dispatch import enqueue_attempts
from deliveries.models import Delivery, DeliveryAttempt, DeliveryStatus, ErrorKind
from deliveries.services import publish
from tests.factories import make_subscription
from tests.fault_helpers import (
    FINISHED,
    all_succeeded,
    fault_line,
    publish_many,
    row,
    sweep_until,
    tally,
)
from tests.procs import wait_until
from tests.receiver import Reply

pytestmark = [pytest.mark.faults, pytest.mark.integration]


def test_kill_9_of_pool_children_mid_delivery(start_worker, receiver, faulty):
    overrides = faulty()
    receiver.script("/kill", Reply(200, delay=1.0))
    make_subscription(receiver.url("/kill"))
    worker = start_worker(pool="prefork", concurrency=2, overrides=overrides)
    events = publish_many(12)

    assert receiver.wait_for(2, "/kill", timeout=20)  # both children are inside a POST
    assert Delivery.objects.filter(status=DeliveryStatus.SENDING).count() >= 1
    children = worker.children()
    assert children
    for pid in children:
        os.kill(pid, signal.SIGKILL)
    killed_at = time.monotonic()

    assert sweep_until(lambda: all_succeeded(events), timeout=90)
    recover = time.monotonic() - killed_at
    result = tally(events, receiver, "/kill")
    fault_line("kill -9 pool children", **row(result), recover=recover)
    assert result["lost"] == 0
    assert result["max_posts"] <= 2
    interrupted = DeliveryAttempt.objects.filter(error_kind=ErrorKind.INTERRUPTED).count()
    assert 1 <= interrupted <= len(children)


def test_kill_9_of_the_whole_worker(start_worker, receiver, faulty):
    overrides = faulty()
    receiver.script("/killall", Reply(200, delay=0.5))
    make_subscription(receiver.url("/killall"))
    worker = start_worker(pool="threads", concurrency=4, overrides=overrides)
    events = publish_many(20)

    assert receiver.wait_for(4, "/killall", timeout=20)
    worker.kill()
    killed_at = time.monotonic()
    start_worker(pool="threads", concurrency=4, overrides=overrides)

    assert sweep_until(lambda: all_succeeded(events), timeout=90)
    recover = time.monotonic() - killed_at
    result = tally(events, receiver, "/killall")
    fault_line("kill -9 whole worker", **row(result), recover=recover)
    assert result["lost"] == 0
    assert result["max_posts"] <= 2


def test_same_message_five_times_with_four_processes_posts_once(start_worker, receiver, faulty):
    overrides = faulty()
    receiver.script("/five", Reply(200, delay=0.5))
    make_subscription(receiver.url("/five"))
    with transaction.atomic():
        event = publish("order.created", {})  # its own message goes out on commit
    delivery = Delivery.objects.get(event=event)
    assert enqueue_attempts([(delivery.pk, 1)] * 4) == 4
    started = time.monotonic()
    start_worker(pool="prefork", concurrency=4, overrides=overrides)

    assert wait_until(lambda: all_succeeded([event]), timeout=30)
    assert not receiver.wait_for(2, "/five", timeout=3)
    result = tally([event], receiver, "/five")
    fault_line("same message x5, 4 procs", **row(result), recover=time.monotonic() - started)
    assert receiver.counts["/five"] == 1
    assert DeliveryAttempt.objects.filter(delivery=delivery).count() == 1


def test_countdown_longer_than_the_visibility_timeout_posts_once(start_worker, receiver, faulty):
    # Attempt 2 waits 1 s (a Celery countdown, under half the 4 s visibility timeout); attempt
    # 3 waits 10 s, far beyond it: it is parked in the database and sent by the sweep. The
    # worker restores unacknowledged messages every second, so a countdown message that outlived
    # the visibility timeout would be handed out again and show as an extra POST.
    overrides = faulty(RETRY_SCHEDULE=[0, 1, 10], RETRY_JITTER=0)
    transport = {"visibility_timeout": 4, "unacked_restore_interval": 1}
    transport["unacked_restore_throttle"] = 1
    receiver.script("/vt", Reply(500), Reply(500), Reply(200))
    make_subscription(receiver.url("/vt"))
    start_worker(
        overrides=overrides,
        extra_env={"CELERY_TRANSPORT_OVERRIDES": __import__("json").dumps(transport)},
    )
    started = time.monotonic()
    events = publish_many(1)

    assert receiver.wait_for(2, "/vt", timeout=20)
    delivery = Delivery.objects.get(event=events[0])
    assert wait_until(lambda: Delivery.objects.get(pk=delivery.pk).attempts == 2, timeout=10)
    assert sweep_until(lambda: all_succeeded(events), timeout=40)
    sweep_until(lambda: False, timeout=10)  # two more visibility timeouts, sweeping on
    result = tally(events, receiver, "/vt")
    fault_line("countdown > visibility", **row(result), recover=time.monotonic() - started)
    assert receiver.counts["/vt"] == 3
    gaps = [b.at - a.at for a, b in zip(receiver.received, receiver.received[1:], strict=False)]
    # Floors from the schedule; the 1 s countdown came well before the 10 s parked retry.
    assert 0.9 <= gaps[0] < gaps[1] and gaps[1] >= 9.5
    assert list(
        DeliveryAttempt.objects.filter(delivery=delivery)
        .values_list("number", "response_status")
        .order_by("number")
    ) == [(1, 500), (2, 500), (3, 200)]


def test_500_forever_gives_the_schedule_then_failed_without_traceback(start_worker, receiver):
    receiver.script("/broken", Reply(500))
    make_subscription(receiver.url("/broken"))
    worker = start_worker()
    started = time.monotonic()
    event = publish("order.created", {})

    assert wait_until(
        lambda: Delivery.objects.filter(event=event, status__in=FINISHED).exists(), timeout=30
    )
    time.sleep(1)
    delivery = Delivery.objects.get(event=event)
    schedule = 5  # tests/settings.py RETRY_SCHEDULE
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == schedule == receiver.counts["/broken"]
    assert DeliveryAttempt.objects.filter(delivery=delivery).count() == schedule
    log = worker.output()
    assert "Traceback" not in log and "ERROR" not in log
    fault_line(
        "500 forever",
        sent=1,
        delivered=0,
        lost=0,
        dup=0,
        recover=time.monotonic() - started,
    )


def test_sigterm_lets_the_running_delivery_finish(start_worker, receiver, faulty):
    overrides = faulty()
    receiver.script("/deploy", Reply(200, delay=2))
    make_subscription(receiver.url("/deploy"))
    worker = start_worker(overrides=overrides)
    events = publish_many(1)
    assert receiver.wait_for(1, "/deploy", timeout=20)

    started = time.monotonic()
    worker.proc.send_signal(signal.SIGTERM)
    worker.proc.wait(30)

    assert all_succeeded(events)  # recorded before the worker exited, no sweep needed
    result = tally(events, receiver, "/deploy")
    fault_line("SIGTERM mid-POST", **row(result), recover=time.monotonic() - started)
    assert receiver.counts["/deploy"] == 1


def test_sigterm_hands_back_retries_held_in_memory(start_worker, receiver, faulty, broker):
    # The retry of attempt 1 is a countdown (ETA) message that the worker holds in memory. A
    # deploy stops the worker before it is due: it must be back in Redis, not lost with the
    # process (no sweep runs in this test, and SWEEP_GRACE is far away).
    overrides = faulty(RETRY_SCHEDULE=[0, 6], RETRY_JITTER=0, SWEEP_GRACE=600)
    receiver.script("/eta", Reply(500), Reply(200))
    make_subscription(receiver.url("/eta"))
    worker = start_worker(overrides=overrides)
    events = publish_many(1)
    assert receiver.wait_for(1, "/eta", timeout=20)
    assert wait_until(
        lambda: Delivery.objects.filter(status=DeliveryStatus.RETRYING).exists(), timeout=10
    )
    time.sleep(0.5)  # the retry message is published and reserved by the worker

    started = time.monotonic()
    worker.proc.send_signal(signal.SIGTERM)
    worker.proc.wait(30)
    from webhooks_project.celery import app

    with app.connection_for_read() as conn:
        assert conn.default_channel.client.llen("webhooks.retry") == 1  # handed back

    start_worker(overrides=overrides)
    assert wait_until(lambda: all_succeeded(events), timeout=30)
    result = tally(events, receiver, "/eta")
    fault_line("SIGTERM with ETA retry held", **row(result), recover=time.monotonic() - started)
    assert receiver.counts["/eta"] == 2
    gap = receiver.received[1].at - receiver.received[0].at
    assert gap >= 5.5  # the countdown was kept, not run early
