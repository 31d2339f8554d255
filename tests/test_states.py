"""The guarded transitions of the attempt hot path (deliveries/services/states.py) and the load
before them (deliveries/services/attempts.py), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone

from deliveries.models import Delivery, DeliveryAttempt, DeliveryStatus, ErrorKind, Event
from deliveries.services import attempts, inflight, states
from deliveries.services.attempts import _load
from tests.factories import make_subscription

pytestmark = pytest.mark.django_db


@pytest.fixture
def delivery():
    sub = make_subscription("http://127.0.0.1:9/hook")
    event = Event.objects.create(type="order.created", data={"a": 1})
    return Delivery.objects.create(event=event, subscription=sub, status=DeliveryStatus.PENDING)


def test_claim_is_guarded_by_status_and_attempt_number(delivery):
    now = timezone.now()
    lease = now + dt.timedelta(seconds=60)
    assert not states.claim(delivery.pk, 2, now, lease)  # wrong attempt number
    assert states.claim(delivery.pk, 1, now, lease)
    assert not states.claim(delivery.pk, 1, now, lease)  # already sending
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SENDING, 1)
    assert delivery.claimed_at == now and delivery.next_attempt_at == lease
    assert not states.finish(delivery.pk, 2, states.succeeded(200, now))
    assert states.finish(delivery.pk, 1, states.succeeded(200, now))
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert delivery.delivered_at == now and delivery.next_attempt_at is None
    assert delivery.last_status_code == 200


def test_defer_moves_the_due_time_of_a_waiting_delivery_only(delivery):
    until = timezone.now() + dt.timedelta(minutes=5)
    assert states.defer(delivery.pk, 1, until)
    delivery.refresh_from_db()
    assert delivery.next_attempt_at == until and delivery.attempts == 0
    assert not states.defer(delivery.pk, 2, until)


def _attempt(delivery, number):
    return DeliveryAttempt(
        delivery=delivery,
        number=number,
        started_at=timezone.now(),
        duration_ms=12,
        request_headers={"webhook-id": "x", "authorization": "[redacted]"},
        response_status=200,
        response_headers={"Content-Type": "text/plain"},
        response_body="ok",
        task_id="t1",
    )


def test_the_literal_statement_names_every_column_of_the_attempt_row():
    # A field added to DeliveryAttempt must be added to the PostgreSQL statement too: this fails
    # until it is (the ORM path off PostgreSQL would pick it up silently).
    columns = {
        field.column for field in DeliveryAttempt._meta.concrete_fields if not field.primary_key
    }
    statement = states._INSERT_THEN_FINISH
    listed = statement.split("INSERT INTO webhooks_delivery_attempt (")[1].split(")")[0]
    assert {name.strip() for name in listed.split(",")} == columns
    assert DeliveryAttempt._meta.db_table == "webhooks_delivery_attempt"
    assert f"UPDATE {Delivery._meta.db_table}" in statement
    finished = set(states.succeeded(200, timezone.now())) | {"updated_at"}
    assert all(f"{Delivery._meta.get_field(name).column} = %s" in statement for name in finished)


def test_the_load_is_one_joined_select_guarded_by_the_attempt_number(
    delivery, django_assert_num_queries
):
    sub = delivery.subscription
    sub.headers = {"X-Team": "a"}
    sub.save()
    with django_assert_num_queries(1):
        loaded = _load(delivery.pk, 1)
        # Everything an attempt reads is loaded (PostgreSQL's literal load names these fields).
        for model, names in attempts._LOADED.items():
            obj = {Delivery: loaded, Event: loaded.event}.get(model, loaded.subscription)
            assert [getattr(obj, name) for name in names]
    expected = Delivery.objects.select_related("event", "subscription").get(pk=delivery.pk)
    # Any other field is loaded on first access, with the value the ORM reads.
    for obj, ref in (
        (loaded, expected),
        (loaded.event, expected.event),
        (loaded.subscription, expected.subscription),
    ):
        for field in type(ref)._meta.concrete_fields:
            assert getattr(obj, field.attname) == getattr(ref, field.attname), field.name
    assert loaded.event.data == {"a": 1} and loaded.subscription.headers == {"X-Team": "a"}
    assert loaded.subscription.signing_secrets(timezone.now())
    assert not loaded._state.adding and loaded._state.db == expected._state.db
    # The guard: not waiting for attempt 2, or no longer waiting at all.
    assert _load(delivery.pk, 2) is None
    Delivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.SUCCEEDED)
    assert _load(delivery.pk, 1) is None


def test_finish_with_attempt_stores_the_attempt_and_ends_the_delivery_together(delivery):
    now = timezone.now()
    assert states.claim(delivery.pk, 1, now, now + dt.timedelta(seconds=60))
    attempt, won = states.finish_with_attempt(_attempt(delivery, 1), 1, states.succeeded(200, now))
    assert won and attempt.pk and not attempt._state.adding
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED and delivery.delivered_at == now
    stored = DeliveryAttempt.objects.get(pk=attempt.pk)
    assert stored.number == 1 and stored.response_body == "ok"
    assert stored.request_headers == {"webhook-id": "x", "authorization": "[redacted]"}


def test_finish_with_attempt_stores_a_retry_as_the_orm_reads_it_back(delivery):
    now = timezone.now()
    due = now + dt.timedelta(seconds=300)
    assert states.claim(delivery.pk, 1, now, now + dt.timedelta(seconds=60))
    attempt = _attempt(delivery, 1)
    attempt.response_status, attempt.error_kind = 503, ErrorKind.HTTP_STATUS
    attempt.response_headers = {"Retry-After": "300", "X-Ünïcode": "✓"}
    attempt.error = "HTTP 503"
    attempt, won = states.finish_with_attempt(attempt, 1, states.retrying(due, 503, "HTTP 503"))
    assert won
    delivery.refresh_from_db()
    assert (delivery.status, delivery.next_attempt_at) == (DeliveryStatus.RETRYING, due)
    assert (delivery.last_status_code, delivery.last_error) == (503, "HTTP 503")
    assert delivery.delivered_at is None and delivery.updated_at >= now
    stored = DeliveryAttempt.objects.get(pk=attempt.pk)
    for field in DeliveryAttempt._meta.concrete_fields:
        assert getattr(stored, field.attname) == getattr(attempt, field.attname), field.name


def test_finish_with_attempt_keeps_the_attempt_when_the_delivery_moved_on(delivery):
    # The request was sent, so its row is kept even if the sweep took the delivery meanwhile.
    now = timezone.now()
    assert states.claim(delivery.pk, 1, now, now + dt.timedelta(seconds=60))
    Delivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.RETRYING)
    _attempt_row, won = states.finish_with_attempt(
        _attempt(delivery, 1), 1, states.failed(500, "HTTP 500")
    )
    assert not won
    assert DeliveryAttempt.objects.filter(delivery=delivery, number=1).count() == 1
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.RETRYING and delivery.last_error == ""


def test_finish_with_attempt_is_all_or_nothing_on_a_duplicate_attempt(delivery):
    from django.db import IntegrityError, transaction

    now = timezone.now()
    assert states.claim(delivery.pk, 1, now, now + dt.timedelta(seconds=60))
    _attempt(delivery, 1).save()  # the sweep recorded this attempt as interrupted
    with pytest.raises(IntegrityError), transaction.atomic():
        states.finish_with_attempt(_attempt(delivery, 1), 1, states.succeeded(200, now))
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENDING  # the UPDATE did not happen either
    assert DeliveryAttempt.objects.filter(delivery=delivery).count() == 1


def test_finish_with_attempt_is_one_statement_on_postgresql(delivery, django_assert_num_queries):
    now = timezone.now()
    assert states.claim(delivery.pk, 1, now, now + dt.timedelta(seconds=60))
    # PostgreSQL: the INSERT rides in a WITH clause of the UPDATE. Elsewhere: a savepoint
    # (the test's transaction) around two statements.
    expected = 1 if connection.vendor == "postgresql" else 4
    with django_assert_num_queries(expected):
        states.finish_with_attempt(_attempt(delivery, 1), 1, states.succeeded(200, now))


def test_the_common_path_of_an_attempt_is_three_statements_on_postgresql(
    delivery, receiver, django_assert_num_queries
):
    # Load, claim, and the attempt row with the delivery's end; no other query (a field read
    # that the literal load left deferred would show here as one more).
    sub = delivery.subscription
    sub.url, sub.last_success_at = receiver.url("/three"), timezone.now()
    sub.save()
    # The tenant's in-flight cap is read once per TENANT_LIMIT_TTL in a process, not per
    # attempt: read here, as an earlier attempt of the worker would have.
    inflight.tenant_limit(sub.tenant_id)
    expected = 3 if connection.vendor == "postgresql" else 6  # SQLite: a savepoint around two
    with django_assert_num_queries(expected):
        outcome = attempts.attempt_delivery(delivery.pk, 1)

    assert outcome.action == "done"
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED and receiver.requests_to("/three")
