"""Retention keeps up at any volume: a prune run works to a time budget (not a cap of batches),
sends itself again while old history is left, and deletes each batch's attempts once."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from deliveries import dispatch, tasks
from deliveries.models import Delivery, DeliveryAttempt, DeliveryStatus, Event
from deliveries.services import maintenance
from tests.factories import make_subscription
from tests.ops_helpers import make_delivery

pytestmark = pytest.mark.django_db


@pytest.fixture
def old_history(settings):
    """Ten finished deliveries 40 days old (two attempts each), one recent, one old retrying."""
    settings.WEBHOOKS = {**settings.WEBHOOKS, "RETENTION_DAYS": 30, "BATCH_SIZE": 3}
    subscription = make_subscription("http://127.0.0.1:9/a")
    old = timezone.now() - dt.timedelta(days=40)
    two = [(500, 5), (200, 5)]
    rows = [
        make_delivery(subscription, DeliveryStatus.SUCCEEDED, created_at=old, attempts=two)
        for _ in range(10)
    ]
    make_delivery(subscription, DeliveryStatus.SUCCEEDED, attempts=[(200, 5)])
    make_delivery(subscription, DeliveryStatus.RETRYING, created_at=old)
    return rows


def ticking(step: float):
    """A clock that moves `step` seconds each time it is read (the clock is the one thing a
    test may fake)."""
    counter = itertools.count()
    return lambda: next(counter) * step


def test_a_run_stops_at_its_time_budget_and_says_more_is_left(old_history):
    # The run starts at 0 s and each batch ends one second later: with 2.5 s the third batch
    # ends past the budget, and the run stops there (batches of 3).
    first = maintenance.prune(budget=2.5, clock=ticking(1.0))

    assert (first.deliveries, first.attempts, first.done) == (9, 18, False)
    assert Delivery.objects.filter(pk__in=[d.pk for d in old_history]).count() == 1

    rest = maintenance.prune(budget=1000, clock=ticking(1.0))

    assert (rest.deliveries, rest.attempts, rest.events, rest.done) == (1, 2, 10, True)
    assert not Delivery.objects.filter(pk__in=[d.pk for d in old_history]).exists()
    assert Delivery.objects.count() == 2  # the recent one and the old one still retrying


def test_there_is_no_cap_in_batches_only_in_time(old_history, settings):
    settings.WEBHOOKS = {**settings.WEBHOOKS, "BATCH_SIZE": 1}

    # A clock that never moves: every old delivery goes in one run, one per batch.
    pruned = maintenance.prune(clock=lambda: 0.0)

    assert (pruned.deliveries, pruned.done) == (10, True)


def test_each_batch_deletes_its_attempts_once(old_history):
    with CaptureQueriesContext(connection) as captured:
        pruned = maintenance.prune(budget=1000)

    deletes = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("DELETE")]
    attempt_deletes = [q for q in deletes if "webhooks_delivery_attempt" in q.split("WHERE")[0]]
    assert pruned.deliveries == 10
    assert len(attempt_deletes) == 4  # batches of 3: 3, 3, 3, 1
    assert not DeliveryAttempt.objects.filter(delivery__in=old_history).exists()


def test_the_task_sends_itself_again_while_history_is_left(old_history, settings, broker):
    from tests.test_performance import queued

    settings.WEBHOOKS = {**settings.WEBHOOKS, "PRUNE_TIME_BUDGET": 0}

    tasks.prune()  # one batch, then out of time

    assert Delivery.objects.filter(pk__in=[d.pk for d in old_history]).count() == 7
    assert [name for name, _ in queued(broker, "webhooks.maintenance")] == [dispatch.PRUNE]


def test_the_task_stops_when_history_is_pruned(settings, broker):
    from tests.test_performance import queued

    Event.objects.create(type="a.b", data={})
    tasks.prune()

    assert queued(broker, "webhooks.maintenance") == []
