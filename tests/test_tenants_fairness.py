"""One tenant's hanging endpoints do not slow another tenant down.

Tenant A has 30 endpoints that hang past TIMEOUT and 10 events for each (300 deliveries);
tenant B has one fast endpoint and publishes just after. With the Procfile's worker (threads
pool, 100 threads) and the default caps, A holds at most TENANT_MAX_IN_FLIGHT (20) threads and
every one of B's deliveries arrives before A's first attempt has timed out. Without the tenant
cap, A's 300 deliveries (10 per endpoint under MAX_IN_FLIGHT) would take all 100 threads for
TIMEOUT seconds first, so B could arrive only after A's first attempts ended. The assertion is
an order of events at the receiver, not a wall-clock bound: a loaded machine slows both sides.
"""

from __future__ import annotations

import statistics
import time

import pytest

from deliveries.models import Delivery, DeliveryStatus
from deliveries.services import inflight, publish
from tests.factories import make_subscription
from tests.receiver import Reply

pytestmark = [pytest.mark.integration]

HANG = 30.0  # seconds A's endpoints keep the connection open: far past TIMEOUT
TIMEOUT = 6  # seconds per attempt; A's attempts end at this
PROCFILE_WORKER = {"pool": "threads", "concurrency": 100}


def publish_to_a_then_b(receiver, b_events: int) -> dict[str, float]:
    """A's 300 deliveries first, then B's; returns each B event id's publish time."""
    for n in range(10):
        publish("order.created", {"n": n}, tenant="tenant-a")
    published = {}
    for n in range(b_events):
        event = publish("order.created", {"n": n}, tenant="tenant-b")
        published[str(event.pk)] = time.monotonic()
    return published


def test_a_tenant_with_hanging_endpoints_does_not_delay_another(start_worker, receiver, settings):
    overrides = {"TIMEOUT": TIMEOUT, "RETRY_SCHEDULE": [0], "SWEEP_GRACE": 30}
    settings.WEBHOOKS = {**settings.WEBHOOKS, **overrides}
    assert settings.WEBHOOKS.get("TENANT_MAX_IN_FLIGHT", 20) == 20  # the shipped default
    for n in range(30):
        receiver.script(f"/a{n}", Reply(200, delay=HANG))
        make_subscription(receiver.url(f"/a{n}"), ["order.*"], tenant="tenant-a")
    make_subscription(receiver.url("/b"), ["order.*"], tenant="tenant-b")
    start_worker(**PROCFILE_WORKER, overrides=overrides, extra_env={"DATABASE_POOL_MAX_SIZE": "16"})

    published = publish_to_a_then_b(receiver, b_events=10)
    peak = 0
    deadline = time.monotonic() + 20
    while receiver.counts["/b"] < 10 and time.monotonic() < deadline:
        peak = max(peak, inflight.tenant_in_flight("tenant-a"))
        time.sleep(0.05)

    arrivals = {r.headers["webhook-id"]: r.at for r in receiver.requests_to("/b")}
    latencies = sorted(arrivals[event_id] - at for event_id, at in published.items())
    a_started = len([r for r in receiver.received if r.path.startswith("/a")])
    print(
        f"\nFAIRNESS B: {len(latencies)}/10 delivered, latency p50 "
        f"{statistics.median(latencies):.2f} s, max {latencies[-1]:.2f} s; "
        f"A: {a_started} attempts started, peak in flight {peak}"
    )
    assert len(latencies) == 10, "B's deliveries did not all arrive"
    # A's attempts end at TIMEOUT after they started: B's last POST came before the first of
    # them could free a thread.
    first_a = min(r.at for r in receiver.received if r.path.startswith("/a"))
    assert max(arrivals.values()) < first_a + TIMEOUT
    assert peak <= 20
    # A's deliveries wait their turn, deferred without using up an attempt.
    waiting = Delivery.objects.filter(
        subscription__tenant_id="tenant-a", status=DeliveryStatus.PENDING, attempts=0
    )
    assert waiting.count() >= 300 - 20 * 2
