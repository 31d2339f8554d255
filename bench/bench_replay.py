"""Replay throughput: N failed deliveries of one subscription replayed through the API, timed
until the receiver has them all. Real Redis, a real worker process, a real receiver.

    pytest -p tests.conftest bench/bench_replay.py -s -q   (BENCH_N=1000 by default)
"""

from __future__ import annotations

import os
import time

import pytest
from django.utils import timezone

from deliveries.models import Delivery, DeliveryStatus, Event
from tests.factories import make_subscription
from tests.procs import wait_until

N = int(os.environ.get("BENCH_N", "1000"))


@pytest.mark.integration
def test_replay_throughput(start_worker, receiver, staff_client, django_assert_max_num_queries):
    sub = make_subscription(receiver.url("/bench"))
    now = timezone.now()
    events = Event.objects.bulk_create(
        Event(type="order.created", data={"n": i}, created_at=now, fanned_out_at=now)
        for i in range(N)
    )
    Delivery.objects.bulk_create(
        Delivery(
            event=e, subscription=sub, status=DeliveryStatus.FAILED, attempts=1, created_at=now
        )
        for e in events
    )
    start_worker(concurrency=8)
    since = (now - timezone.timedelta(minutes=1)).isoformat()

    t0 = time.perf_counter()
    response = staff_client.post(f"/api/subscriptions/{sub.pk}/replay/", {"since": since})
    answered = time.perf_counter() - t0
    assert response.json()["queued"] == N
    assert receiver.wait_for(N, path="/bench", timeout=300)
    received = time.perf_counter() - t0
    assert wait_until(
        lambda: Delivery.objects.filter(subscription=sub, status="succeeded").count() == N, 120
    )
    done = time.perf_counter() - t0
    print(
        f"\nreplay of {N}: API answered in {answered * 1000:.0f} ms, all received after "
        f"{received:.2f} s, all recorded after {done:.2f} s ({N / done:.0f} deliveries/s)"
    )
