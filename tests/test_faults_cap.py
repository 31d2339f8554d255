"""A slow endpoint does not hold the others back: 1,000 deliveries to an endpoint that takes
10 s, queued before 100 to a fast one, with 8 worker threads. Without the per-subscription cap
the fast ones would wait behind 1,000 / 8 slow attempts; with a cap of 2 they go through while
the slow ones wait their turn (deferred, not holding a thread)."""

from __future__ import annotations

import time

import pytest
from django.utils import timezone

from deliveries.dispatch import enqueue_attempts
from deliveries.models import Delivery, DeliveryStatus, Event
from deliveries.services import inflight
from tests.factories import make_subscription
from tests.fault_helpers import fault_line
from tests.receiver import Reply

pytestmark = [pytest.mark.faults, pytest.mark.integration]


def queue_deliveries(subscription, count: int) -> list[int]:
    """Rows and messages as a fan-out makes them, in bulk (the test is about the worker)."""
    now = timezone.now()
    events = Event.objects.bulk_create(
        [Event(type="order.created", data={"n": n}, fanned_out_at=now) for n in range(count)]
    )
    Delivery.objects.bulk_create(
        [Delivery(event=e, subscription=subscription, next_attempt_at=now) for e in events]
    )
    rows = Delivery.objects.filter(subscription=subscription).order_by("pk")
    return list(rows.values_list("pk", flat=True))


def test_fast_endpoint_finishes_first_behind_a_slow_one(
    start_worker,
    receiver,
    faulty,
):
    overrides = faulty(TIMEOUT=2, MAX_IN_FLIGHT=2, RETRY_SCHEDULE=[0], SWEEP_GRACE=30)
    receiver.script("/slow", Reply(200, delay=10))
    slow = make_subscription(receiver.url("/slow"))
    fast = make_subscription(receiver.url("/fast"))
    slow_ids = queue_deliveries(slow, 1000)
    fast_ids = queue_deliveries(fast, 100)
    assert enqueue_attempts((pk, 1) for pk in slow_ids + fast_ids) == 1100

    started = time.monotonic()
    start_worker(pool="threads", concurrency=8, overrides=overrides)
    fast_done = Delivery.objects.filter(pk__in=fast_ids, status=DeliveryStatus.SUCCEEDED)
    peak = 0
    deadline = started + 240  # a give-up time, not what is asserted: generous under load
    while fast_done.count() < 100 and time.monotonic() < deadline:
        peak = max(peak, inflight.in_flight(slow.pk))
        time.sleep(0.2)
    elapsed = time.monotonic() - started

    slow_finished = Delivery.objects.filter(
        pk__in=slow_ids, status__in=[DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED]
    ).count()
    fault_line(
        "slow endpoint, cap 2",
        sent=100,
        delivered=fast_done.count(),
        lost=100 - fast_done.count(),
        dup=max(0, receiver.counts["/fast"] - 100),
        recover=elapsed,
    )
    print(f"  slow deliveries finished meanwhile: {slow_finished} of 1000; peak in flight {peak}")
    assert fast_done.count() == 100
    assert receiver.counts["/fast"] == 100
    # Every slow attempt takes the full 2 s timeout and at most 2 run at once.
    assert slow_finished <= elapsed + 4
    assert peak <= 2
    # Deferred slow deliveries have not used up an attempt.
    waiting = Delivery.objects.filter(pk__in=slow_ids, status=DeliveryStatus.PENDING)
    assert waiting.count() >= 900
    assert not waiting.exclude(attempts=0).exists()


def test_without_the_cap_the_fast_endpoint_waits(
    start_worker,
    receiver,
    faulty,
):
    """The control: the same queue with no cap keeps every thread on the slow endpoint."""
    overrides = faulty(TIMEOUT=2, MAX_IN_FLIGHT=None, RETRY_SCHEDULE=[0], SWEEP_GRACE=30)
    receiver.script("/slow", Reply(200, delay=10))
    slow = make_subscription(receiver.url("/slow"))
    fast = make_subscription(receiver.url("/fast"))
    slow_ids = queue_deliveries(slow, 1000)
    fast_ids = queue_deliveries(fast, 100)
    enqueue_attempts((pk, 1) for pk in slow_ids + fast_ids)
    start_worker(pool="threads", concurrency=8, overrides=overrides)
    time.sleep(12)
    assert receiver.counts["/fast"] == 0
    assert receiver.counts["/slow"] >= 24  # 8 threads x 2 s attempts, all on the slow endpoint
