"""What an attempt holds in the counters' Redis, and when it gives it back
(services/attempts.py, `_Held`): its in-flight slot as soon as the receiver's answer is in, not
after the record (a cap counts requests in flight), and its message's place in the tenant's
fair share in the same round trip when no retry message follows."""

from __future__ import annotations

import pytest
from django.utils import timezone

from deliveries.models import DeliveryAttempt, DeliveryStatus, ErrorKind
from deliveries.services import fairness, inflight, states
from deliveries.services.attempts import attempt_delivery
from tests.factories import make_subscription
from tests.ops_helpers import make_delivery
from tests.receiver import Reply

pytestmark = pytest.mark.django_db(transaction=True)

TENANT = "acme"


def due(subscription):
    return make_delivery(subscription, DeliveryStatus.PENDING, next_attempt_at=timezone.now())


@pytest.fixture
def at_record(monkeypatch):
    """What the counters hold each time an attempt is recorded: (the endpoint's slots, the
    tenant's slots, the tenant's places), read inside the real `states.record`."""
    seen: list[tuple[int, int, int]] = []
    real = states.record

    def record(attempt, *args, **kwargs):
        subscription = attempt.delivery.subscription
        seen.append(
            (
                inflight.in_flight(subscription.pk),
                inflight.tenant_in_flight(str(subscription.tenant_id)),
                fairness.queued(str(subscription.tenant_id)),
            )
        )
        return real(attempt, *args, **kwargs)

    monkeypatch.setattr(states, "record", record)
    return seen


def test_the_slot_and_the_place_are_free_before_the_attempt_is_recorded(
    broker, receiver, at_record
):
    subscription = make_subscription(receiver.url("/ok"), tenant=TENANT)
    delivery = due(subscription)
    assert fairness.admit(TENANT, [delivery.pk]) == [delivery.pk]
    assert attempt_delivery(delivery.pk, 1, tenant=TENANT).action == "done"
    # Both caps apply by default (MAX_IN_FLIGHT, TENANT_MAX_IN_FLIGHT): the request held a slot
    # in each, and neither outlived the answer.
    assert at_record == [(0, 0, 0)]
    assert receiver.counts["/ok"] == 1


def test_a_retry_keeps_its_place_and_an_attempt_the_sweep_took_frees_it(
    broker, receiver, monkeypatch
):
    receiver.script("/busy", Reply(500), Reply(500))
    subscription = make_subscription(receiver.url("/busy"), tenant=TENANT)
    delivery = due(subscription)
    fairness.admit(TENANT, [delivery.pk])
    outcome = attempt_delivery(delivery.pk, 1, tenant=TENANT)
    # A retry message follows: the message chain goes on and keeps its place; the slot is free.
    assert outcome.action == "retry"
    assert fairness.queued(TENANT) == 1 and inflight.in_flight(subscription.pk) == 0

    # Attempt 2 is answered 500 too (a retry foretold), but the sweep recorded it as interrupted
    # while the request was out: the attempt ends with no message after it, so its place is
    # freed all the same.
    real = states.record

    def swept_first(attempt, *args, **kwargs):
        DeliveryAttempt.objects.create(
            delivery_id=attempt.delivery_id,
            number=attempt.number,
            started_at=timezone.now(),
            error_kind=ErrorKind.INTERRUPTED,
        )
        return real(attempt, *args, **kwargs)

    monkeypatch.setattr(states, "record", swept_first)
    assert attempt_delivery(delivery.pk, 2, tenant=TENANT).action == "skip"
    assert fairness.queued(TENANT) == 0 and inflight.in_flight(subscription.pk) == 0
