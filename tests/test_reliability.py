"""Reliability rules, in-process: the attempt state machine against a real HTTP receiver, the
claim, the sweep, the in-flight cap on the real Redis, dead endpoints, signals and pruning.

No worker here (tests/test_faults*.py run real workers and real faults); `attempt_delivery` is
called the way the task calls it.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import threading
import time

import pytest
from django.db import connection
from django.db.models.functions import Now
from django.utils import timezone

from deliveries import signals
from deliveries.conf import webhook_settings
from deliveries.models import Delivery, DeliveryAttempt, DeliveryStatus, ErrorKind, Event
from deliveries.services import inflight, maintenance, states
from deliveries.services.attempts import attempt_delivery, parse_retry_after
from deliveries.services.sweeping import sweep
from deliveries.transport import send
from subscriptions.models import Subscription
from subscriptions.services import enable_subscription
from tests.factories import make_subscription
from tests.hostile import HostileServer, Send, Trickle
from tests.receiver import Reply

pytestmark = pytest.mark.django_db(transaction=True)


def make_delivery(subscription: Subscription, **fields) -> Delivery:
    event = Event.objects.create(type="order.created", data={"n": 1}, fanned_out_at=timezone.now())
    fields.setdefault("next_attempt_at", timezone.now())
    return Delivery.objects.create(event=event, subscription=subscription, **fields)


class Recorder:
    """A real signal receiver, connected for the test's duration."""

    def __init__(self, signal) -> None:
        self.calls: list[dict] = []
        self.signal = signal
        signal.connect(self, weak=False)

    def __call__(self, sender, **kwargs):
        self.calls.append(kwargs)

    def disconnect(self) -> None:
        self.signal.disconnect(self)


@pytest.fixture
def recorded():
    made: list[Recorder] = []

    def connect(signal) -> Recorder:
        made.append(Recorder(signal))
        return made[-1]

    yield connect
    for recorder in made:
        recorder.disconnect()


def queued(broker, queue: str) -> int:
    from webhooks_project.celery import app

    with app.connection_for_read() as conn:
        return int(conn.default_channel.client.llen(queue))


# --- The claim --------------------------------------------------------------------------------


def test_claim_is_taken_once_per_attempt_number():
    delivery = make_delivery(make_subscription("http://127.0.0.1:9/a"))
    now = timezone.now()
    claimed = states.claim(delivery.pk, 1)
    assert claimed is not None
    assert states.claim(delivery.pk, 1) is None  # the same message again
    assert states.claim(delivery.pk, 2) is None  # no retry while it is being sent
    attempt = DeliveryAttempt(delivery=claimed, number=1, started_at=claimed.claimed_at)
    retrying = states.Ending(DeliveryStatus.RETRYING, 500, "HTTP 500", now)
    assert states.record(attempt, retrying)[1]
    assert states.claim(delivery.pk, 1) is None  # a stale copy of attempt 1
    assert states.claim(delivery.pk, 2) is not None


def test_concurrent_claims_of_one_attempt_have_one_winner():
    """Eight threads, each with its own database connection, race for the same attempt."""
    deliveries = [make_delivery(make_subscription(f"http://127.0.0.1:9/{n}")) for n in range(5)]
    wins: list[int] = []
    barrier = threading.Barrier(8)

    def race(delivery_id: int) -> None:
        try:
            barrier.wait()
            if states.claim(delivery_id, 1) is not None:
                wins.append(delivery_id)
        finally:
            connection.close()

    for delivery in deliveries:
        barrier.reset()
        threads = [threading.Thread(target=race, args=(delivery.pk,)) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sorted(wins) == sorted(d.pk for d in deliveries)


def test_duplicate_message_for_a_finished_attempt_sends_nothing(receiver):
    delivery = make_delivery(make_subscription(receiver.url("/once")))
    assert attempt_delivery(delivery.pk, 1).action == "done"
    assert attempt_delivery(delivery.pk, 1).action == "skip"
    assert receiver.counts["/once"] == 1


def test_reopen_keeps_its_behaviour_for_redelivery(receiver):
    delivery = make_delivery(make_subscription(receiver.url("/again")))
    attempt_delivery(delivery.pk, 1)
    assert states.reopen([delivery.pk], timezone.now()) == [delivery.pk]
    assert attempt_delivery(delivery.pk, 2).action == "done"
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED and delivery.attempts == 2


# --- Answers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 422])
def test_other_4xx_are_final(receiver, status, recorded):
    failed = recorded(signals.delivery_failed)
    receiver.script("/no", Reply(status))
    delivery = make_delivery(make_subscription(receiver.url("/no")))
    assert attempt_delivery(delivery.pk, 1).action == "done"
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.last_status_code == status
    assert [c["reason"] for c in failed.calls] == ["not retryable"]
    assert failed.calls[0]["delivery"].status == DeliveryStatus.FAILED


@pytest.mark.parametrize("status", [408, 409, 425, 429, 500, 502, 503, 504])
def test_retryable_answers_retry(receiver, status):
    receiver.script("/later", Reply(status))
    delivery = make_delivery(make_subscription(receiver.url("/later")))
    outcome = attempt_delivery(delivery.pk, 1)
    assert outcome.action == "retry" and outcome.next_attempt == 2
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.RETRYING and delivery.attempts == 1


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirect_is_a_final_failure_and_not_followed(receiver, status):
    receiver.script("/moved", Reply(status, headers={"Location": receiver.url("/elsewhere")}))
    delivery = make_delivery(make_subscription(receiver.url("/moved")))
    assert attempt_delivery(delivery.pk, 1).action == "done"
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.last_status_code == status
    assert receiver.counts["/elsewhere"] == 0


def test_410_disables_the_subscription_and_discards_what_waits(receiver, recorded):
    disabled = recorded(signals.subscription_disabled)
    receiver.script("/gone", Reply(410))
    subscription = make_subscription(receiver.url("/gone"))
    delivery = make_delivery(subscription)
    waiting = [make_delivery(subscription) for _ in range(3)]
    other = make_delivery(make_subscription(receiver.url("/fine")))

    assert attempt_delivery(delivery.pk, 1).action == "done"

    subscription.refresh_from_db()
    assert not subscription.is_active
    assert "410" in subscription.disabled_reason
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DISCARDED and delivery.last_status_code == 410
    for row in waiting:
        row.refresh_from_db()
        assert row.status == DeliveryStatus.DISCARDED
        assert "410" in row.last_error
        assert attempt_delivery(row.pk, 1).action == "skip"  # its queued message sends nothing
    assert Delivery.objects.get(pk=other.pk).status == DeliveryStatus.PENDING
    assert [c["subscription"].pk for c in disabled.calls] == [subscription.pk]
    assert receiver.counts["/gone"] == 1


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_seconds_parks_a_long_wait(receiver, status):
    receiver.script("/busy", Reply(status, headers={"retry-after": "120"}))
    delivery = make_delivery(make_subscription(receiver.url("/busy")))
    before = timezone.now()
    outcome = attempt_delivery(delivery.pk, 1)
    assert outcome.action == "park"  # 120 s is beyond the Celery countdown bound (60 s)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.RETRYING
    wait = (delivery.next_attempt_at - before).total_seconds()
    assert 119 <= wait <= 125


def test_retry_after_short_rides_a_countdown(receiver):
    receiver.script("/slowdown", Reply(429, headers={"Retry-After": "3"}))
    delivery = make_delivery(make_subscription(receiver.url("/slowdown")))
    outcome = attempt_delivery(delivery.pk, 1)
    assert outcome.action == "retry"
    assert 3 <= outcome.countdown <= 3.1  # the schedule's 0.2 s is overruled by the receiver


def test_retry_after_http_date_and_clamping(receiver):
    now = timezone.now()
    later = email.utils.format_datetime(now + dt.timedelta(seconds=600), usegmt=True)
    assert 590 <= parse_retry_after(later, now) <= 601
    assert parse_retry_after("999999999", now) == 86400  # a receiver cannot park us for years
    past = email.utils.format_datetime(now - dt.timedelta(hours=1), usegmt=True)
    assert parse_retry_after(past, now) == 0
    assert parse_retry_after("soon", now) is None

    receiver.script("/date", Reply(503, headers={"Retry-After": later}))
    delivery = make_delivery(make_subscription(receiver.url("/date")))
    assert attempt_delivery(delivery.pk, 1).action == "park"
    delivery.refresh_from_db()
    assert 590 <= (delivery.next_attempt_at - now).total_seconds() <= 620


def test_500_until_the_schedule_ends_then_failed_with_a_signal(receiver, recorded):
    failed = recorded(signals.delivery_failed)
    receiver.script("/down", Reply(500))
    delivery = make_delivery(make_subscription(receiver.url("/down")))
    schedule = len(webhook_settings.RETRY_SCHEDULE)
    outcomes = [attempt_delivery(delivery.pk, n).action for n in range(1, schedule + 1)]
    assert outcomes == ["retry"] * (schedule - 1) + ["done"]
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempts == schedule
    assert [c["reason"] for c in failed.calls] == ["retry schedule exhausted"]
    assert receiver.counts["/down"] == schedule


def test_success_signal_carries_the_finished_row(receiver, recorded):
    succeeded = recorded(signals.delivery_succeeded)
    subscription = make_subscription(receiver.url("/ok"))
    delivery = make_delivery(subscription)
    attempt_delivery(delivery.pk, 1)
    assert len(succeeded.calls) == 1
    call = succeeded.calls[0]
    assert call["delivery"].status == DeliveryStatus.SUCCEEDED
    assert call["attempt"].response_status == 200
    subscription.refresh_from_db()
    assert subscription.last_success_at is not None and subscription.failing_since is None


def _record_success(subscription, at):
    delivery = make_delivery(subscription)
    claimed = states.claim(delivery.pk, 1)
    attempt = DeliveryAttempt(
        delivery=claimed, number=1, started_at=at, response_status=200, task_id="t"
    )
    return states.record(attempt, states.Ending(DeliveryStatus.SUCCEEDED, 200), success_at=at)


def test_successes_within_a_second_note_a_fresh_endpoints_last_success_once():
    # Deliveries of a fresh endpoint in flight together all claimed it with no last success:
    # the first success writes it, the others of the same second leave the row alone (pages
    # show it to the second), and the next second's writes it again.
    subscription = make_subscription("http://127.0.0.1:9/fresh")
    second = timezone.now().replace(microsecond=100_000)
    for ms in (0, 1, 2):
        recorded = _record_success(subscription, second + dt.timedelta(milliseconds=ms))
        assert recorded.won and recorded.failing_since is None
    subscription.refresh_from_db()
    assert subscription.last_success_at == second
    later = second + dt.timedelta(seconds=1)
    _record_success(subscription, later)
    subscription.refresh_from_db()
    assert subscription.last_success_at == later


def test_a_success_on_a_failing_endpoint_reports_the_run_and_ends_it():
    started = timezone.now() - dt.timedelta(minutes=5)
    subscription = make_subscription("http://127.0.0.1:9/failing", failing_since=started)
    recorded = _record_success(subscription, timezone.now())
    # The record statement leaves a failing endpoint as it is and hands back its run's start.
    assert recorded.failing_since == started
    subscription.refresh_from_db()
    assert subscription.failing_since == started and subscription.last_success_at is None


# --- Timeouts that a trickling receiver cannot stretch ------------------------------------------


def trickling_server(trickle_headers: bool) -> HostileServer:
    """Answers one byte a second: the status line and headers, or the body."""
    head = b"HTTP/1.1 200 OK\r\ncontent-length: 60\r\n\r\n"
    server = HostileServer().start()
    if trickle_headers:
        server.script("/trickle", Trickle(head, 1.0))
    else:
        server.script("/trickle", Send(head), Trickle(b"x" * 60, 1.0))
    return server


@pytest.mark.parametrize("trickle_headers", [True, False], ids=["headers", "body"])
def test_trickling_receiver_is_cut_at_the_total_timeout(trickle_headers, webhooks):
    webhooks(TIMEOUT=2)
    server = trickling_server(trickle_headers)
    try:
        started = time.monotonic()
        result = send(
            server.url("/trickle"), b"{}", {}, connect_timeout=1, timeout=2, max_body_bytes=1024
        )
        elapsed = time.monotonic() - started
        assert result.error_kind == ErrorKind.TIMEOUT
        # Floor: the 2 s deadline (each byte arrives well within the 2 s read timeout, so only
        # the total deadline cuts it); the 60 bytes alone take 60 s.
        assert 1.9 <= elapsed < 2 + 15

        delivery = make_delivery(make_subscription(server.url("/trickle")))
        assert attempt_delivery(delivery.pk, 1).action == "retry"
        attempt = DeliveryAttempt.objects.get(delivery=delivery)
        assert attempt.error_kind == ErrorKind.TIMEOUT
        assert 1900 <= attempt.duration_ms < (2 + 15) * 1000
    finally:
        server.stop()


# --- The sweep --------------------------------------------------------------------------------


def test_sweep_fans_out_an_event_whose_fan_out_never_ran(broker, webhooks):
    webhooks(SWEEP_GRACE=0)
    subscription = make_subscription("http://127.0.0.1:9/a")
    # Committed a second ago, never fanned out. (A second: the sweep dates "before" with the
    # database's time as this process estimates it, which on SQLite is only exact to the ms.)
    event = Event.objects.create(
        type="order.created", data={}, created_at=timezone.now() - dt.timedelta(seconds=1)
    )
    report = sweep()
    assert report.fanned_out == 1
    assert Delivery.objects.get(event=event).subscription_id == subscription.pk
    assert queued(broker, "webhooks") == 1
    assert sweep().fanned_out == 0  # idempotent


def test_sweep_releases_a_stale_claim_with_an_interrupted_attempt(broker, webhooks):
    webhooks(STALE_SENDING_AFTER=5)
    subscription = make_subscription("http://127.0.0.1:9/a")
    stale = make_delivery(subscription)
    assert states.claim(stale.pk, 1)
    last = make_delivery(subscription, attempts=len(webhook_settings.RETRY_SCHEDULE) - 1)
    assert states.claim(last.pk, last.attempts + 1)
    fresh = make_delivery(subscription)
    assert states.claim(fresh.pk, 1)
    # Claimed 10 s ago on the database's clock (the lease is 5 s), as a worker that died would.
    Delivery.objects.filter(pk__in=[stale.pk, last.pk]).update(
        claimed_at=Now() - dt.timedelta(seconds=10)
    )

    assert sweep().released == 2  # the stale one and the one on its last attempt

    stale.refresh_from_db()
    assert stale.status == DeliveryStatus.RETRYING and stale.attempts == 1
    interrupted = DeliveryAttempt.objects.get(delivery=stale)
    assert interrupted.error_kind == ErrorKind.INTERRUPTED
    assert queued(broker, "webhooks.retry") == 1  # attempt 2 is on its way
    last.refresh_from_db()
    assert last.status == DeliveryStatus.FAILED  # that was its final attempt
    assert Delivery.objects.get(pk=fresh.pk).status == DeliveryStatus.SENDING


def test_sweep_requeues_due_deliveries_in_batches_under_a_lease(broker, webhooks):
    webhooks(SWEEP_GRACE=5, BATCH_SIZE=3, TENANT_MAX_QUEUED=None)  # fairness off: one FIFO
    subscription = make_subscription("http://127.0.0.1:9/a")
    old = timezone.now() - dt.timedelta(seconds=60)
    due = [make_delivery(subscription, next_attempt_at=old) for _ in range(7)]
    make_delivery(subscription, next_attempt_at=timezone.now())  # its message is on its way
    make_delivery(
        subscription, status=DeliveryStatus.RETRYING, attempts=1, next_attempt_at=old
    )  # parked retry, now due

    assert sweep().enqueued == 8
    assert queued(broker, "webhooks") == 7 and queued(broker, "webhooks.retry") == 1
    assert sweep().enqueued == 0  # leased: the messages just sent are not doubled
    for row in due:
        row.refresh_from_db()
        assert row.next_attempt_at > old


def test_sweep_does_not_pile_duplicates_onto_a_backlog(broker, webhooks):
    webhooks(SWEEP_GRACE=0, BATCH_SIZE=3, TENANT_MAX_QUEUED=None)  # fairness off: one FIFO
    subscription = make_subscription("http://127.0.0.1:9/a")
    old = timezone.now() - dt.timedelta(seconds=60)
    rows = [make_delivery(subscription, next_attempt_at=old) for _ in range(5)]
    from deliveries.dispatch import enqueue_attempts

    enqueue_attempts((row.pk, 1) for row in rows)  # the workers have not caught up yet
    report = sweep()
    assert report.enqueued == 0 and report.backlog == 5
    assert queued(broker, "webhooks") == 5
    with broker_flushed():
        report = sweep()  # Redis lost them: now the sweep sends them again
    assert report.enqueued == 5


class broker_flushed:
    def __enter__(self):
        from webhooks_project.celery import app

        with app.connection_for_write() as conn:
            conn.default_channel.client.flushdb()

    def __exit__(self, *exc):
        return False


# --- Short waits in Celery, long waits in the database -------------------------------------------


def test_countdown_bound_stays_inside_the_visibility_timeout(settings, webhooks):
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
    assert webhook_settings.max_countdown == 60
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 30}
    assert webhook_settings.max_countdown == 15
    webhooks(MAX_COUNTDOWN=600)
    assert webhook_settings.max_countdown == 15  # never beyond half the visibility timeout
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
    assert webhook_settings.max_countdown == 600


def test_default_schedule_parks_everything_after_the_first_retry(receiver, webhooks):
    webhooks(RETRY_SCHEDULE=[0, 5, 300, 1800], RETRY_JITTER=0)
    receiver.script("/down", Reply(500))
    delivery = make_delivery(make_subscription(receiver.url("/down")))
    assert attempt_delivery(delivery.pk, 1).action == "retry"  # 5 s: a Celery countdown
    assert attempt_delivery(delivery.pk, 2).action == "park"  # 300 s: a row for the sweep
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.RETRYING


# --- The in-flight cap ------------------------------------------------------------------------


def test_cap_counts_slots_per_subscription_and_expires_lost_ones(broker, webhooks):
    webhooks(MAX_IN_FLIGHT=2, TIMEOUT=0.2)  # lease = TIMEOUT + 5 s
    a = make_subscription("http://127.0.0.1:9/a")
    b = make_subscription("http://127.0.0.1:9/b", max_in_flight=1)
    first, second = inflight.acquire(a), inflight.acquire(a)
    assert first and second and first.client is not None
    assert inflight.acquire(a) is None
    assert inflight.acquire(b) is not None and inflight.acquire(b) is None  # its own max_in_flight
    first.release()
    first.release()  # idempotent
    assert inflight.acquire(a) is not None
    # A worker killed while holding a slot: the slot expires after the lease.
    from webhooks_project.celery import app

    with app.connection_for_write() as conn:
        conn.default_channel.client.zadd(f"{inflight.KEY_PREFIX}{b.pk}", {"dead": 0}, xx=False)
        conn.default_channel.client.delete(f"{inflight.KEY_PREFIX}{a.pk}")
        conn.default_channel.client.zadd(f"{inflight.KEY_PREFIX}{a.pk}", {"x": 0, "y": 0})
    assert inflight.acquire(a) is not None  # both tokens had expired (score 0)


def test_no_cap_configured_or_broker_not_redis(broker, webhooks, caplog):
    webhooks(MAX_IN_FLIGHT=None, TENANT_MAX_IN_FLIGHT=None)
    sub = make_subscription("http://127.0.0.1:9/a")
    assert all(inflight.acquire(sub) is inflight.UNCAPPED for _ in range(50))
    webhooks(MAX_IN_FLIGHT=1)
    from webhooks_project.celery import app

    url = app.conf.broker_url
    app.conf.broker_url = "amqp://guest@127.0.0.1:1//"
    inflight._state.warned = False
    try:
        with caplog.at_level(logging.WARNING, logger="deliveries.services.inflight"):
            assert inflight.acquire(sub) is inflight.UNCAPPED
            assert inflight.acquire(sub) is inflight.UNCAPPED
        # Not silent: an error, once per process (and system check webhooks.E030 before).
        logged = [r for r in caplog.records if "no Redis for the in-flight counters" in r.message]
        assert len(logged) == 1 and logged[0].levelno == logging.ERROR
        # With REDIS_URL the caps hold whatever the broker.
        webhooks(REDIS_URL=broker.url)
        assert inflight.acquire(sub) is not inflight.UNCAPPED
        assert inflight.acquire(sub) is None
    finally:
        app.conf.broker_url = url


def test_over_the_cap_defers_without_consuming_an_attempt(broker, receiver, webhooks):
    webhooks(MAX_IN_FLIGHT=1, IN_FLIGHT_RETRY_DELAY=0.5, SWEEP_GRACE=30)
    subscription = make_subscription(receiver.url("/capped"))
    delivery = make_delivery(subscription)
    held = inflight.acquire(subscription)

    # The claim is given back, with its attempt number; the row is due when the message is back,
    # so the sweep does not take it for lost meanwhile.
    before = timezone.now()
    outcome = attempt_delivery(delivery.pk, 1)

    assert outcome.action == "defer"
    assert (outcome.next_attempt, outcome.deferrals) == (1, 1)
    assert 0.5 <= outcome.countdown <= 1.0
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING and delivery.attempts == 0
    assert delivery.claimed_at is None and not delivery.attempt_set.exists()
    assert delivery.next_attempt_at >= before + dt.timedelta(seconds=0.5)
    assert receiver.counts["/capped"] == 0
    # The backoff doubles; once it reaches the countdown bound the delivery is parked.
    assert attempt_delivery(delivery.pk, 1, deferrals=3).countdown >= 4
    assert attempt_delivery(delivery.pk, 1, deferrals=10).action == "park"
    held.release()
    assert attempt_delivery(delivery.pk, 1, deferrals=1).action == "done"
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED and delivery.attempts == 1
    assert inflight.in_flight(subscription.pk) == 0  # the slot was handed back


# --- Dead endpoints, re-enabling --------------------------------------------------------------


def test_dead_endpoints_are_disabled_and_can_be_enabled_again(receiver, recorded, webhooks):
    webhooks(DISABLE_AFTER=3600)
    disabled = recorded(signals.subscription_disabled)
    enabled = recorded(signals.subscription_enabled)
    now = timezone.now()
    dead = make_subscription(receiver.url("/dead"), failing_since=now - dt.timedelta(hours=2))
    flaky = make_subscription(receiver.url("/flaky"), failing_since=now - dt.timedelta(minutes=5))
    healthy = make_subscription(receiver.url("/ok"))
    waiting = make_delivery(dead)

    assert maintenance.disable_dead_endpoints() == 1
    assert maintenance.disable_dead_endpoints() == 0

    dead.refresh_from_db()
    assert not dead.is_active and "no success" in dead.disabled_reason
    assert Delivery.objects.get(pk=waiting.pk).status == DeliveryStatus.DISCARDED
    assert [c["subscription"].pk for c in disabled.calls] == [dead.pk]
    assert Subscription.objects.get(pk=flaky.pk).is_active
    assert Subscription.objects.get(pk=healthy.pk).is_active

    assert enable_subscription(dead)
    assert not enable_subscription(dead)
    dead.refresh_from_db()
    assert dead.is_active and dead.failing_since is None and dead.disabled_reason == ""
    assert [c["subscription"].pk for c in enabled.calls] == [dead.pk]
    assert maintenance.disable_dead_endpoints() == 0  # its failure history starts afresh
    delivery = make_delivery(dead)
    assert attempt_delivery(delivery.pk, 1).action == "done"
    assert receiver.counts["/dead"] == 1


def test_failures_start_the_clock_and_a_success_stops_it(receiver):
    receiver.script("/wobbly", Reply(500), Reply(200))
    subscription = make_subscription(receiver.url("/wobbly"))
    delivery = make_delivery(subscription)
    attempt_delivery(delivery.pk, 1)
    subscription.refresh_from_db()
    assert subscription.failing_since is not None
    attempt_delivery(delivery.pk, 2)
    subscription.refresh_from_db()
    assert subscription.failing_since is None and subscription.last_success_at is not None


# --- Retention --------------------------------------------------------------------------------


def test_prune_deletes_old_finished_history_in_batches(webhooks):
    webhooks(RETENTION_DAYS=30)
    subscription = make_subscription("http://127.0.0.1:9/a")
    old = timezone.now() - dt.timedelta(days=31)
    finished = []
    for status in (DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED, DeliveryStatus.DISCARDED):
        for _ in range(2):
            row = make_delivery(subscription, status=status, created_at=old)
            DeliveryAttempt.objects.create(delivery=row, number=1, started_at=old)
            finished.append(row)
    Event.objects.filter(deliveries__in=finished).update(created_at=old)
    old_unfinished = make_delivery(subscription, status=DeliveryStatus.RETRYING, created_at=old)
    Event.objects.filter(pk=old_unfinished.event_id).update(created_at=old)
    recent = make_delivery(subscription, status=DeliveryStatus.SUCCEEDED)
    DeliveryAttempt.objects.create(delivery=recent, number=1, started_at=timezone.now())

    pruned = maintenance.prune(batch_size=4)
    assert (pruned.deliveries, pruned.attempts, pruned.done) == (6, 6, True)

    assert not Delivery.objects.filter(pk__in=[r.pk for r in finished]).exists()
    assert not DeliveryAttempt.objects.filter(delivery_id__in=[r.pk for r in finished]).exists()
    assert not Event.objects.filter(pk__in=[r.event_id for r in finished]).exists()
    assert Delivery.objects.filter(pk=old_unfinished.pk).exists()
    assert Event.objects.filter(pk=old_unfinished.event_id).exists()
    assert DeliveryAttempt.objects.filter(delivery=recent).exists()
    assert maintenance.prune(batch_size=4).deliveries == 0
