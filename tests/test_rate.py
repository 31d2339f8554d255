"""A per-endpoint rate in events per second (shared/DESIGN.md, "Rate"): the GCRA in Redis, the
wait without an attempt, the 429 pause, where the rate comes from, and the API's field; the
rate measured at a real receiver with real workers."""

from __future__ import annotations

import time

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from deliveries.models import Delivery, DeliveryAttempt, DeliveryStatus
from deliveries.services import attempt_delivery, inflight, publish, rate
from subscriptions.models import Subscription, Tenant
from tests.factories import make_subscription, make_tenant_user
from tests.ops_helpers import make_delivery
from tests.receiver import Reply
from tests.stubdns import resolving

pytestmark = pytest.mark.django_db


# --- The GCRA in the in-flight script -------------------------------------------------------------


def test_a_burst_of_one_seconds_worth_then_each_waiter_gets_its_own_turn(broker):
    sub = make_subscription("http://127.0.0.1:9/a", max_rate=4)
    taken = [inflight.take(sub) for _ in range(4)]  # a burst of floor(4) = 4
    assert all(isinstance(t, inflight.Slot) for t in taken)
    for slot in taken:
        slot.release()
    first, second, third = (inflight.take(sub) for _ in range(3))
    assert isinstance(first, inflight.Refusal) and first.reason == "rate"
    # One interval (250 ms) apart: the waiters do not all come back at once.
    assert 0 < first.wait <= 0.25
    assert second.wait == pytest.approx(first.wait + 0.25, abs=0.02)
    assert third.wait == pytest.approx(first.wait + 0.5, abs=0.02)


def test_a_rate_under_1_per_second_allows_no_burst(broker):
    sub = make_subscription("http://127.0.0.1:9/a", max_rate=0.5)
    assert isinstance(inflight.take(sub), inflight.Slot)
    refused = inflight.take(sub)
    assert isinstance(refused, inflight.Refusal) and refused.wait == pytest.approx(2.0, abs=0.05)


def test_a_delivery_refused_by_its_cap_spends_none_of_the_rate(broker):
    sub = make_subscription("http://127.0.0.1:9/a", max_rate=1, max_in_flight=1)
    busy = inflight.take(sub)
    assert isinstance(busy, inflight.Slot)
    # The rate allows no second event for a second; the cap is checked after the rate.
    refused = inflight.take(sub)
    assert isinstance(refused, inflight.Refusal) and refused.reason == "rate"
    busy.release()
    sub2 = make_subscription("http://127.0.0.1:9/b", max_rate=1000, max_in_flight=1)
    held = inflight.take(sub2)
    assert isinstance(held, inflight.Slot)
    assert inflight.take(sub2) == inflight.Refusal("cap", 0.0)
    held.release()
    # 1,000/s has a burst of 1,000: the refusals by the cap spent none of it.
    client = inflight.redis_client()
    tat = float(client.get(f"{rate.TAT_PREFIX}{sub2.pk}"))
    seconds, micros = client.time()
    now_ms = seconds * 1000 + micros / 1000
    assert tat - now_ms < 5  # one event spent (1 ms), not two


def test_the_rate_comes_from_the_endpoint_else_its_tenant_else_the_setting(db, webhooks):
    Tenant.objects.for_key("org_r")
    Tenant.objects.filter(pk="org_r").update(max_rate=3)
    inflight.forget_tenant_limits()
    own = make_subscription("http://127.0.0.1:9/a", tenant="org_r", max_rate=7)
    tenants = make_subscription("http://127.0.0.1:9/b", tenant="org_r")
    other = make_subscription("http://127.0.0.1:9/c", tenant="org_s")
    assert (rate.rate_for(own), rate.rate_for(tenants), rate.rate_for(other)) == (7, 3, None)
    webhooks(MAX_RATE=2.5)
    assert rate.rate_for(other) == 2.5


# --- Over the rate, a delivery waits without spending an attempt ----------------------------------


def test_a_delivery_over_the_rate_waits_without_an_attempt(broker, receiver):
    sub = make_subscription(receiver.url("/r"), max_rate=1)
    first = make_delivery(sub, "pending", next_attempt_at=timezone.now())
    second = make_delivery(sub, "pending", next_attempt_at=timezone.now())
    assert attempt_delivery(first.pk, 1).action == "done"

    outcome = attempt_delivery(second.pk, 1)

    assert outcome.action == "defer" and outcome.next_attempt == 1
    assert 0.5 < outcome.countdown <= 1.1  # its turn, not the cap's backoff
    second.refresh_from_db()
    assert (second.status, second.attempts) == (DeliveryStatus.PENDING, 0)
    assert receiver.counts["/r"] == 1
    # Its turn come, it is sent as attempt 1, and the attempt says how long it was held.
    time.sleep(outcome.countdown)
    assert attempt_delivery(second.pk, 1, deferrals=outcome.deferrals, cap=outcome.cap).action == (
        "done"
    )
    attempt = DeliveryAttempt.objects.get(delivery=second)
    assert attempt.number == 1 and attempt.throttled_ms >= 500
    assert DeliveryAttempt.objects.get(delivery=first).throttled_ms == 0


def test_a_wait_that_lasts_shows_the_rate_as_its_reason(broker):
    sub = make_subscription("http://127.0.0.1:9/r", max_rate=0.01)
    assert isinstance(inflight.take(sub), inflight.Slot)  # the one event of the next 100 s
    delivery = make_delivery(sub, "pending", next_attempt_at=timezone.now())

    outcome = attempt_delivery(delivery.pk, 1)

    # 100 s is longer than a countdown may be: parked in the row, due at its turn.
    assert outcome.action == "park"
    delivery.refresh_from_db()
    assert delivery.waiting_for == "rate" and delivery.attempts == 0
    wait = (delivery.next_attempt_at - timezone.now()).total_seconds()
    assert 90 < wait <= 102  # its turn (at most 100 s away) plus a 1% margin


# --- A 429 with Retry-After pauses the endpoint for every worker ----------------------------------


def test_a_429_with_retry_after_pauses_the_whole_endpoint(broker, receiver):
    receiver.script("/busy", Reply(429, headers={"Retry-After": "30"}))
    sub = make_subscription(receiver.url("/busy"))
    first = make_delivery(sub, "pending", next_attempt_at=timezone.now())
    second = make_delivery(sub, "pending", next_attempt_at=timezone.now())

    retry = attempt_delivery(first.pk, 1)
    assert retry.action == "retry" and retry.countdown >= 30  # its own retry: after 30 s

    outcome = attempt_delivery(second.pk, 1)
    assert outcome.action == "defer" and 25 < outcome.countdown <= 31
    second.refresh_from_db()
    assert second.attempts == 0 and receiver.counts["/busy"] == 1  # not sent, no attempt
    refusal = inflight.take(Subscription.objects.get(pk=sub.pk))
    assert isinstance(refusal, inflight.Refusal) and refusal.reason == "retry_after"
    # Another endpoint is not paused.
    other = make_subscription(receiver.url("/other"))
    assert isinstance(inflight.take(other), inflight.Slot)


def test_a_429_without_retry_after_pauses_nothing(broker, receiver):
    receiver.script("/busy", Reply(429))
    sub = make_subscription(receiver.url("/busy"))
    first = make_delivery(sub, "pending", next_attempt_at=timezone.now())
    assert attempt_delivery(first.pk, 1).action == "retry"
    assert isinstance(inflight.take(sub), inflight.Slot)


# --- The API --------------------------------------------------------------------------------------


@pytest.fixture
def api(db):
    client = APIClient()
    client.force_authenticate(make_tenant_user("owner", "org_a"))
    with resolving({"hooks.example.com": ["93.184.215.14"]}):
        yield client


def create(api, **fields):
    body = {"url": "https://hooks.example.com/in", "event_types": ["*"], **fields}
    return api.post("/api/subscriptions/", body, format="json")


def test_max_rate_is_stored_and_returned(api):
    response = create(api, max_rate=2.5)
    assert response.status_code == 201, response.json()
    assert response.json()["max_rate"] == 2.5
    sub_id = response.json()["id"]
    patched = api.patch(f"/api/subscriptions/{sub_id}/", {"max_rate": None}, format="json")
    assert patched.status_code == 200 and patched.json()["max_rate"] is None
    assert Subscription.objects.get(pk=sub_id).max_rate is None


@pytest.mark.parametrize("value", [0, -1, 0.001, 10_001, "nan", "inf", "fast"])
def test_a_bad_max_rate_is_a_400_naming_the_field(api, value):
    response = create(api, max_rate=value)
    assert response.status_code == 400 and "max_rate" in response.json(), response.json()
    assert not Subscription.objects.exists()


# --- Measured at a real receiver ------------------------------------------------------------------


@pytest.mark.integration
def test_the_rate_at_the_receiver_is_within_10_percent_of_max_rate(start_worker, receiver):
    """Two worker processes share one endpoint at 5 events/s with 400 deliveries waiting: over
    the 30 s that follow the first second (whose burst the rate allows), the receiver counts
    150 +- 10%."""
    per_second = 5.0
    sub = make_subscription(receiver.url("/rated"), max_rate=per_second, max_in_flight=50)
    start_worker(pool="threads", concurrency=8)
    start_worker(pool="threads", concurrency=8)
    for n in range(40):
        publish("order.created", {"n": n}, tenant=sub.tenant_id)
    # 40 events to one endpoint: 40 deliveries; 360 more in ten publishes of a test fan-out.
    for n in range(360):
        publish("order.created", {"n": n + 40}, tenant=sub.tenant_id)
    assert receiver.wait_for(1, "/rated", timeout=60)
    start = receiver.requests_to("/rated")[0].at
    # Not timed: waits for the window to pass, then counts what arrived in it.
    while time.monotonic() < start + 32:
        time.sleep(0.5)
    arrivals = [r.at - start for r in receiver.requests_to("/rated")]
    in_window = sum(1 for at in arrivals if 1.0 <= at < 31.0)
    print(f"\nRATE: {in_window} arrivals in 30 s at max_rate {per_second}/s")
    assert abs(in_window - 30 * per_second) <= 0.1 * 30 * per_second, in_window
    # None of the waits spent an attempt: every delivery sent so far was attempt 1.
    assert not DeliveryAttempt.objects.filter(delivery__subscription=sub, number__gt=1).exists()
    assert Delivery.objects.filter(subscription=sub, attempts=0).count() >= 400 - len(arrivals) - 20


# --- Waiting shows: admin, portal, metrics --------------------------------------------------------


def test_waits_on_the_rate_show_in_the_admin_the_portal_and_the_metrics(
    admin_client, client, settings
):
    from django.urls import reverse

    from tests.portal_helpers import open_portal, portal_url

    settings.WEBHOOKS = {**settings.WEBHOOKS, "METRICS_ENABLED": True, "METRICS_TOKEN": "tkn"}
    sub = make_subscription("http://127.0.0.1:9/r", tenant="org_a", max_rate=2)
    for wait_ms in (0, 1000, 3000, 9000):
        sent = make_delivery(sub, "succeeded", attempts=[(200, 10)])
        DeliveryAttempt.objects.filter(delivery=sent).update(
            throttled_ms=wait_ms, started_at=timezone.now()
        )
    for _ in range(2):
        make_delivery(
            sub, "pending", next_attempt_at=timezone.now(), wait_reason="rate", wait_attempt=1
        )

    page = admin_client.get(
        reverse("admin:webhook_subscriptions_subscription_change", args=[sub.pk])
    ).content.decode()
    assert 'id="waits-on-rate">2<' in page
    assert 'id="waits-waited">3 / 4<' in page
    assert 'id="waits-p50">3.0 s<' in page and 'id="waits-max">9.0 s<' in page

    open_portal(client, "org_a")
    detail = client.get(portal_url("endpoint", sub.pk)).content.decode()
    assert "2 waiting on the rate" in detail
    assert "3 of 4 attempts waited: median 3.0 s, longest 9.0 s" in detail

    metrics = client.get("/api/metrics/", HTTP_AUTHORIZATION="Bearer tkn").content.decode()
    assert 'webhooks_backlog_held{reason="rate"} 2.0' in metrics
    assert 'webhooks_attempt_throttled_seconds_bucket{le="1.0"} 2.0' in metrics
    assert "webhooks_attempt_throttled_seconds_gsum 13.0" in metrics
