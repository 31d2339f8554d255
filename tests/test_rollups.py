"""The hourly attempt rollups (deliveries/services/rollups.py) that the health figures read:
counts equal to a direct count over the same attempts, counted once even when two runs race,
registered in the beat schedule, and read by the health pages instead of the attempts.

Run on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from deliveries import tasks
from deliveries.models import (
    AttemptCounts,
    DeliveryAttempt,
    DeliveryStatus,
    RollupMark,
    SubscriptionHour,
    TenantHour,
)
from deliveries.schedule import BEAT_SCHEDULE
from deliveries.services import health, rollups
from tests.factories import make_subscription
from tests.ops_helpers import make_delivery

# Attempt outcomes cycled through: (response status or None, duration ms).
SHAPES = [(200, 5), (200, 40), (500, 300), (None, 20000), (204, 2600), (503, 40000)]


def history(now: dt.datetime, hours: int = 30) -> list:
    """Endpoints of two tenants with attempts spread over the last `hours` hours (several per
    hour and endpoint, some outside the 7-day backfill, some too recent to be settled)."""
    subs = [
        make_subscription(f"http://127.0.0.1:9/{t}{i}", tenant=t) for t in ("org_a", "org_b")
        for i in range(2)
    ]  # fmt: skip
    for h in range(hours):
        for i, sub in enumerate(subs):
            shapes = SHAPES[(h + i) % len(SHAPES) :] + SHAPES[: (h + i) % len(SHAPES)]
            make_delivery(
                sub,
                DeliveryStatus.FAILED,
                created_at=now - dt.timedelta(hours=h, minutes=7 * i + 1),
                attempts=shapes[: 1 + (h + i) % 3],
            )
    # Older than the backfill: never counted.
    make_delivery(subs[0], created_at=now - dt.timedelta(days=9), attempts=[(500, 1)])
    # Started 10 s ago: not settled yet (its row could still be joined by slower ones).
    make_delivery(subs[1], created_at=now - dt.timedelta(seconds=12), attempts=[(200, 1)])
    return subs


def direct(start: dt.datetime, end: dt.datetime, key: str) -> dict:
    """{(key value, hour): Counter of the bucket figures} counted straight from the attempts."""
    result: dict = {}
    attempts = DeliveryAttempt.objects.filter(started_at__gte=start, started_at__lt=end)
    for a in attempts.select_related("delivery__subscription"):
        owner = a.delivery.subscription_id if key == "subscription_id" else (
            a.delivery.subscription.tenant_id
        )  # fmt: skip
        figures = result.setdefault((owner, health.floor_hour(a.started_at)), Counter())
        figures["attempts"] += 1
        figures["succeeded"] += a.succeeded
        for bound in health.LATENCY_BUCKETS_MS:
            figures[f"le_{bound}"] += a.duration_ms <= bound
    return result


def stored(model: type[AttemptCounts], key: str) -> dict:
    return {
        (getattr(b, key), b.hour): Counter(
            {n: getattr(b, n) for n in rollups.COUNTS if getattr(b, n)}
        )
        for b in model.objects.all()
    }


def assert_buckets_match(start: dt.datetime, end: dt.datetime) -> None:
    assert stored(SubscriptionHour, "subscription_id") == direct(start, end, "subscription_id")
    assert stored(TenantHour, "tenant_id") == direct(start, end, "tenant_id")


@pytest.mark.django_db
def test_the_buckets_hold_the_bounds_of_the_latency_histogram():
    columns = {f.name for f in SubscriptionHour._meta.get_fields()}
    assert {f"le_{b}" for b in health.LATENCY_BUCKETS_MS} <= columns
    assert set(rollups.COUNTS) <= columns


@pytest.mark.django_db
def test_the_rollup_counts_what_a_direct_count_of_the_attempts_finds():
    now = timezone.now()
    history(now)
    start, end = health.floor_hour(now - rollups.BACKFILL), rollups.settled_before(now)

    done = rollups.roll_up(now)

    assert done.done and done.upto == end
    assert (
        done.attempts
        == DeliveryAttempt.objects.filter(started_at__gte=start, started_at__lt=end).count()
    )
    assert done.steps >= 30  # one step per hour at most
    assert SubscriptionHour.objects.count() > 4 * 29  # every endpoint, every hour
    assert_buckets_match(start, end)
    assert health.counted_up_to() == end

    # Later: attempts in the current hour are added to the buckets already there, and the
    # attempt that was too recent is counted now that it has settled.
    later = now + dt.timedelta(minutes=3)
    sub = SubscriptionHour.objects.order_by("-hour").first().subscription
    make_delivery(sub, created_at=now - dt.timedelta(seconds=5), attempts=[(200, 7), (500, 9)])
    again = rollups.roll_up(later)

    assert again.upto == rollups.settled_before(later) and again.attempts == 3
    assert_buckets_match(start, rollups.settled_before(later))


@pytest.mark.django_db
def test_a_run_that_read_a_mark_another_run_moved_counts_nothing():
    now = timezone.now()
    history(now, hours=2)
    mark = rollups.current_mark(now)
    end = health.floor_hour(mark) + rollups.HOUR
    counted = rollups.count_step(mark, end)
    before = stored(SubscriptionHour, "subscription_id"), stored(TenantHour, "tenant_id")

    # A second run that read the same mark before the first moved it: the guarded update
    # matches no row, it writes nothing.
    assert rollups.count_step(mark, end) is None

    assert (stored(SubscriptionHour, "subscription_id"), stored(TenantHour, "tenant_id")) == before
    assert RollupMark.objects.get().upto == end
    assert (
        counted
        == DeliveryAttempt.objects.filter(started_at__lt=end).exclude(started_at__lt=mark).count()
    )
    with pytest.raises(ValueError):
        rollups.count_step(end, end + dt.timedelta(hours=2))


@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_count_every_attempt_once():
    if connection.vendor == "sqlite":
        pytest.skip("SQLite serialises writers by locking the file: PostgreSQL shows the race")
    now = timezone.now()
    history(now, hours=48)
    start, end = health.floor_hour(now - rollups.BACKFILL), rollups.settled_before(now)
    rollups.current_mark(now)  # the row both runs guard
    barrier = threading.Barrier(2)
    results: list = []

    def run() -> None:
        try:
            barrier.wait()
            results.append(rollups.roll_up(now))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    assert len(results) == 2 and all(r.done for r in results)
    total = DeliveryAttempt.objects.filter(started_at__gte=start, started_at__lt=end).count()
    # Between them the two runs counted each attempt once (however the steps fell).
    assert sum(r.attempts for r in results) == total
    assert_buckets_match(start, end)


@pytest.mark.django_db
def test_buckets_older_than_the_chart_are_deleted():
    now = timezone.now()
    sub = make_subscription("http://127.0.0.1:9/old", tenant="org_a")
    old = health.floor_hour(now - rollups.KEEP - dt.timedelta(hours=1))
    SubscriptionHour.objects.create(subscription=sub, hour=old, attempts=3)
    TenantHour.objects.create(tenant_id="org_a", hour=old, attempts=3)
    kept = SubscriptionHour.objects.create(subscription=sub, hour=health.floor_hour(now))

    rollups.roll_up(now)

    assert list(SubscriptionHour.objects.all()) == [kept]
    assert not TenantHour.objects.exists()


@pytest.mark.django_db
def test_beat_runs_the_rollup_every_minute_on_the_maintenance_queue():
    entry = BEAT_SCHEDULE["webhooks-roll-up"]
    assert entry["task"] == tasks.roll_up.name
    assert entry["schedule"] == 60.0 and entry["options"]["expires"] <= 60
    # The run stops before the next one is due.
    assert entry["schedule"] > rollups.TIME_BUDGET
    now = timezone.now()
    sub = make_subscription("http://127.0.0.1:9/beat", tenant="org_a")
    make_delivery(sub, created_at=now - dt.timedelta(minutes=10), attempts=[(200, 3)])

    tasks.roll_up.apply().get()

    assert SubscriptionHour.objects.get(subscription=sub).attempts == 1


@pytest.mark.django_db
def test_the_24_hour_health_figures_read_buckets_not_attempts():
    now = timezone.now()
    subs = history(now)
    rollups.roll_up(now)

    with CaptureQueriesContext(connection) as queries:
        tenants = health.tenant_health(["org_a", "org_b"], now)
        worst = health.unhealthiest(now)
        figures = health.subscription_health(subs, now)

    # The attempts table is read only for failures in a row of endpoints in a failing run
    # (none here): never for the 24 h and 7-day figures.
    assert not any("webhooks_delivery_attempt" in q["sql"] for q in queries.captured_queries)
    window = DeliveryAttempt.objects.filter(
        started_at__gte=health.last_24_hours(now), started_at__lt=rollups.settled_before(now)
    )
    for key, figure in tenants.items():
        mine = window.filter(delivery__subscription__tenant_id=key)
        assert figure.attempts_24h == mine.count()
        assert figure.succeeded_24h == mine.filter(health.OK).count()
    for sub in subs:
        mine = window.filter(delivery__subscription=sub)
        assert figures[sub.pk].attempts_24h == mine.count()
        # The 7-day chart: every settled attempt of the last 30 hours (none older is kept).
        week = sum(d.succeeded + d.failed for d in figures[sub.pk].days)
        settled = DeliveryAttempt.objects.filter(
            delivery__subscription=sub,
            started_at__gte=now - dt.timedelta(days=2),
            started_at__lt=rollups.settled_before(now),
        )
        assert week == settled.count() > 0
    failed = {
        s.pk: window.filter(delivery__subscription=s).exclude(health.OK).count() for s in subs
    }
    assert [u.subscription.pk for u in worst] == sorted(
        failed, key=lambda pk: (-failed[pk], -figures[pk].attempts_24h, str(pk))
    )
    assert [u.failed for u in worst] == sorted(failed.values(), reverse=True)
