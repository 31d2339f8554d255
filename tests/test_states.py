"""The guarded transitions of the attempt hot path (deliveries/services/states.py): one
implementation on SQLite and PostgreSQL, the database's clock, no phantom attempt numbers."""

from __future__ import annotations

import datetime as dt
from unittest import mock

import pytest
from django.db import IntegrityError, connections, transaction
from django.db.models.functions import Now
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from deliveries.models import Delivery, DeliveryAttempt, DeliveryStatus, ErrorKind, Event
from deliveries.services import attempts, clock, inflight, states
from deliveries.services.connections import working_alias
from deliveries.services.sweeping import sweep
from subscriptions.services import disable_subscription
from tests.factories import make_subscription

pytestmark = pytest.mark.django_db

# A worker whose clock is an hour behind the database's: whatever it computes itself must not
# reach a claim, a lease or delivered_at.
SKEW = dt.timedelta(hours=1)


@pytest.fixture
def delivery():
    sub = make_subscription("http://127.0.0.1:9/hook")
    event = Event.objects.create(type="order.created", data={"a": 1})
    return Delivery.objects.create(event=event, subscription=sub, status=DeliveryStatus.PENDING)


def _behind():
    real = timezone.now
    return mock.patch("django.utils.timezone.now", lambda: real() - SKEW)


def test_claim_takes_the_delivery_once_and_loads_every_field_as_the_orm_does(delivery):
    sub = delivery.subscription
    sub.headers = {"X-Team": "a"}
    sub.save()
    assert states.claim(delivery.pk, 2) is None  # not waiting for attempt 2
    claimed = states.claim(delivery.pk, 1)
    assert claimed is not None
    assert states.claim(delivery.pk, 1) is None  # already sending: the same message again
    expected = Delivery.objects.select_related("event", "subscription").get(pk=delivery.pk)
    assert (expected.status, expected.attempts) == (DeliveryStatus.SENDING, 1)
    # Every field, by name, with the value and type the ORM reads (JSON decoded, SQLite's text
    # datetimes, integer booleans and hex UUIDs converted).
    for obj, ref in (
        (claimed, expected),
        (claimed.event, expected.event),
        (claimed.subscription, expected.subscription),
    ):
        for field in type(ref)._meta.concrete_fields:
            assert getattr(obj, field.attname) == getattr(ref, field.attname), field.name
    assert claimed.event.data == {"a": 1} and claimed.subscription.headers == {"X-Team": "a"}
    assert claimed.subscription.signing_secrets(timezone.now())
    assert not claimed._state.adding and claimed._state.db == working_alias()


def test_claim_and_delivered_at_are_on_the_database_clock_not_the_workers(delivery, receiver):
    sub = delivery.subscription
    sub.url = receiver.url("/clock")
    sub.save()
    before = timezone.now()
    with _behind():
        assert attempts.attempt_delivery(delivery.pk, 1).action == "done"
    delivery.refresh_from_db()
    attempt = delivery.attempt_set.get()
    # The worker thought it was an hour earlier; the rows say what the database's clock said.
    assert delivery.claimed_at >= before - dt.timedelta(seconds=5)
    assert attempt.started_at == delivery.claimed_at
    assert delivery.delivered_at >= delivery.claimed_at
    assert delivery.delivered_at >= delivery.event.created_at


def test_a_sweeper_whose_clock_runs_ahead_releases_no_live_claim(broker, delivery, settings):
    settings.WEBHOOKS = {**settings.WEBHOOKS, "STALE_SENDING_AFTER": 60}
    assert states.claim(delivery.pk, 1)
    real = timezone.now
    with mock.patch("django.utils.timezone.now", lambda: real() + SKEW):
        assert sweep().released == 0
    assert Delivery.objects.get(pk=delivery.pk).status == DeliveryStatus.SENDING
    # Its lease ends on the database's clock: 60 s after the claim.
    Delivery.objects.filter(pk=delivery.pk).update(claimed_at=Now() - dt.timedelta(seconds=61))
    assert sweep().released == 1
    interrupted = DeliveryAttempt.objects.get(delivery=delivery)
    assert interrupted.error_kind == ErrorKind.INTERRUPTED


def _attempt(delivery, number):
    return DeliveryAttempt(
        delivery=delivery,
        number=number,
        started_at=timezone.now(),
        duration_ms=12,
        request_headers={"webhook-id": "x", "authorization": "[redacted]"},
        response_status=503,
        response_headers={"Retry-After": "300", "X-Ünïcode": "✓"},
        response_body="busy",
        error_kind=ErrorKind.HTTP_STATUS,
        error="HTTP 503",
        task_id="t1",
    )


def test_record_stores_the_attempt_and_the_ending_together(delivery):
    due = timezone.now() + dt.timedelta(seconds=300)
    claimed = states.claim(delivery.pk, 1)
    ending = states.Ending(DeliveryStatus.RETRYING, 503, "HTTP 503", due)
    attempt, won, _failing = states.record(_attempt(claimed, 1), ending)
    assert won and attempt.pk and not attempt._state.adding
    delivery.refresh_from_db()
    assert (delivery.status, delivery.next_attempt_at) == (DeliveryStatus.RETRYING, due)
    assert (delivery.last_status_code, delivery.last_error) == (503, "HTTP 503")
    assert delivery.delivered_at is None
    stored = DeliveryAttempt.objects.get(pk=attempt.pk)
    for field in DeliveryAttempt._meta.concrete_fields:
        assert getattr(stored, field.attname) == getattr(attempt, field.attname), field.name


def test_record_keeps_the_attempt_when_the_delivery_moved_on(delivery):
    # The request was sent, so its row is kept even if the sweep took the delivery meanwhile.
    claimed = states.claim(delivery.pk, 1)
    Delivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.RETRYING)
    won = states.record(_attempt(claimed, 1), states.Ending(DeliveryStatus.FAILED, 500)).won
    assert not won
    assert DeliveryAttempt.objects.filter(delivery=delivery, number=1).count() == 1
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.RETRYING and delivery.last_error == ""


def test_record_is_all_or_nothing_on_a_duplicate_attempt(delivery):
    claimed = states.claim(delivery.pk, 1)
    _attempt(delivery, 1).save()  # the sweep recorded this attempt as interrupted
    with pytest.raises(IntegrityError), transaction.atomic():
        states.record(_attempt(claimed, 1), states.Ending(DeliveryStatus.SUCCEEDED, 200))
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENDING  # the UPDATE did not happen either
    assert DeliveryAttempt.objects.filter(delivery=delivery).count() == 1


def test_the_common_path_of_an_attempt_is_two_statements_on_postgresql(delivery, receiver):
    sub = delivery.subscription
    sub.url = receiver.url("/two")
    sub.save()
    # Read once per process and kept, not per attempt: read here as an earlier attempt of the
    # worker would have (the tenant's cap; the clock's offset, measured every few minutes).
    inflight.tenant_limit(sub.tenant_id)
    clock.check()
    with CaptureQueriesContext(connections[working_alias()]) as queries:
        outcome = attempts.attempt_delivery(delivery.pk, 1)
    assert outcome.action == "done"
    statements = [q["sql"] for q in queries.captured_queries if not q["sql"].startswith("SAVE")]
    statements = [s for s in statements if not s.startswith("RELEASE")]
    # PostgreSQL: the claim, and the attempt row with the delivery's end and the endpoint's
    # last success in one statement. Elsewhere the second is an INSERT and two UPDATEs in a
    # transaction.
    expected = 2 if connections[working_alias()].vendor == "postgresql" else 4
    assert len(statements) == expected, statements
    assert statements[0].startswith(("UPDATE", "WITH c AS (UPDATE"))  # the claim
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED and receiver.requests_to("/two")
    sub.refresh_from_db()
    assert sub.last_success_at is not None and sub.failing_since is None


def test_a_discarded_attempt_uses_no_attempt_number(delivery):
    # The subscription was disabled after the delivery was queued: the claim is given back as
    # discarded, with the attempt number it took (no attempt row, so no attempt number).
    disable_subscription(delivery.subscription, "paused")
    Delivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.PENDING)
    assert attempts.attempt_delivery(delivery.pk, 1).action == "done"
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DISCARDED
    assert delivery.attempts == 0 and not delivery.attempt_set.exists()
    assert delivery.last_error == "Subscription is disabled."


def test_release_waits_again_with_the_same_attempt_number(delivery):
    until = timezone.now() + dt.timedelta(minutes=5)
    assert not states.release(delivery.pk, 1, until=until)  # not claimed
    assert states.claim(delivery.pk, 1)
    assert states.release(delivery.pk, 1, until=until)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 0)
    assert delivery.next_attempt_at == until and delivery.claimed_at is None
    assert states.claim(delivery.pk, 1)  # the same attempt, later


def test_disabling_returns_what_it_discarded(delivery):
    sub = delivery.subscription
    other = Delivery.objects.create(
        event=Event.objects.create(type="order.created", data={}),
        subscription=sub,
        status=DeliveryStatus.RETRYING,
        attempts=1,
    )
    sending = Delivery.objects.create(
        event=Event.objects.create(type="order.created", data={}),
        subscription=sub,
        status=DeliveryStatus.SENDING,
        attempts=1,
    )
    # Earlier deliveries discarded with the same text are not counted (no recount by text).
    Delivery.objects.create(
        event=Event.objects.create(type="order.created", data={}),
        subscription=sub,
        status=DeliveryStatus.DISCARDED,
        last_error=states.disabled_reason("paused"),
    )
    assert states.disable(sub, "paused") == 2
    assert states.disable(sub, "paused") is None  # already disabled
    assert Delivery.objects.get(pk=other.pk).status == DeliveryStatus.DISCARDED
    assert Delivery.objects.get(pk=sending.pk).status == DeliveryStatus.SENDING
