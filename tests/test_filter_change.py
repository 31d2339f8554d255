"""A subscription that stops selecting an event's type while a retry waits.

Our rule: the waiting delivery is discarded with a recorded reason, as those of a disabled
subscription are. Checked when the subscription is saved (API, admin, any `save()`), and again
at attempt time for changes that bypass `save()` (a queryset update, a raw SQL fix).
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from deliveries.models import Delivery, DeliveryStatus, Event
from deliveries.services import attempt_delivery, fan_out
from deliveries.services.probes import send_test_event
from subscriptions.models import EventType, Subscription
from tests.factories import make_subscription, make_tenant_user
from tests.procs import wait_until
from tests.receiver import Reply


def waiting_delivery(sub: Subscription, event_type: str = "order.created") -> Delivery:
    """A delivery whose first attempt failed and whose retry is due now."""
    event = Event.objects.create(type=event_type, data={"n": 1})
    fan_out(event.pk)
    delivery = Delivery.objects.get(event=event, subscription=sub)
    Delivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.RETRYING,
        attempts=1,
        next_attempt_at=timezone.now() - dt.timedelta(seconds=1),
        last_status_code=500,
    )
    return Delivery.objects.get(pk=delivery.pk)


@pytest.mark.django_db
def test_a_waiting_retry_is_discarded_at_attempt_time_if_the_type_is_no_longer_selected(
    receiver, broker
):
    sub = make_subscription(receiver.url("/hook"), ["order.*"])
    delivery = waiting_delivery(sub)
    # Bypasses save(): only the attempt-time check can see it.
    Subscription.objects.filter(pk=sub.pk).update(event_types=["invoice.*"])

    outcome = attempt_delivery(delivery.pk, 2)

    delivery.refresh_from_db()
    assert outcome.action == "done"
    assert delivery.status == DeliveryStatus.DISCARDED
    assert delivery.next_attempt_at is None
    assert "no longer selects" in delivery.last_error and "order.created" in delivery.last_error
    # No phantom attempt number: nothing was sent, so the count stays at the one attempt made.
    assert delivery.attempts == 1 and not delivery.attempt_set.exists()
    assert receiver.counts["/hook"] == 0


@pytest.mark.django_db
def test_a_retry_still_selected_through_another_filter_is_sent(receiver, broker):
    sub = make_subscription(receiver.url("/hook"), ["order.*"])
    delivery = waiting_delivery(sub)
    Subscription.objects.filter(pk=sub.pk).update(event_types=["order.created", "invoice.*"])

    attempt_delivery(delivery.pk, 2)

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert receiver.counts["/hook"] == 1


@pytest.mark.django_db
def test_a_test_event_is_sent_whatever_the_filters(receiver, broker):
    sub = make_subscription(receiver.url("/hook"), ["order.*"])
    event = send_test_event(sub).event
    fan_out(event.pk)
    delivery = Delivery.objects.get(event=event)

    attempt_delivery(delivery.pk, 1)

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED


@pytest.mark.django_db
def test_changing_the_filters_through_the_api_discards_what_no_longer_matches(
    django_user_model, broker, django_capture_on_commit_callbacks
):
    EventType.objects.create(name="invoice.sent")
    owner = make_tenant_user("owner", "default")
    sub = make_subscription("http://127.0.0.1:9/hook", ["order.*", "invoice.*"], owner=owner)
    dropped = waiting_delivery(sub, "order.created")
    kept = waiting_delivery(sub, "invoice.sent")
    test_event = send_test_event(sub).event
    fan_out(test_event.pk)
    probe = Delivery.objects.get(event=test_event)
    done = waiting_delivery(sub, "order.paid")
    Delivery.objects.filter(pk=done.pk).update(status=DeliveryStatus.SUCCEEDED)
    api = APIClient()
    api.force_authenticate(owner)

    with django_capture_on_commit_callbacks(execute=True):
        response = api.patch(
            f"/api/subscriptions/{sub.pk}/", {"event_types": ["invoice.sent"]}, format="json"
        )

    assert response.status_code == 200, response.content
    statuses = dict(Delivery.objects.values_list("pk", "status"))
    assert statuses == {
        dropped.pk: DeliveryStatus.DISCARDED,
        kept.pk: DeliveryStatus.RETRYING,
        probe.pk: DeliveryStatus.PENDING,
        done.pk: DeliveryStatus.SUCCEEDED,
    }
    dropped.refresh_from_db()
    assert "no longer selects" in dropped.last_error and dropped.next_attempt_at is None


@pytest.mark.django_db
def test_changing_the_filters_in_the_admin_discards_what_no_longer_matches(
    admin_client, broker, django_capture_on_commit_callbacks
):
    from django.urls import reverse

    sub = make_subscription("http://127.0.0.1:9/hook", ["order.*"], description="d")
    dropped = waiting_delivery(sub)

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:webhook_subscriptions_subscription_change", args=[sub.pk]),
            {
                "url": sub.url,
                "description": "d",
                "event_types": '["invoice.*"]',
                "payload_format": "standard",
                "headers": "",
            },
        )

    assert response.status_code == 302, response.content
    dropped.refresh_from_db()
    assert dropped.status == DeliveryStatus.DISCARDED


@pytest.mark.integration
def test_end_to_end_a_retry_waiting_in_the_broker_is_not_sent(start_worker, receiver):
    """A real worker: the first attempt fails, the filters change while the retry waits in a
    Celery countdown, and the retry is discarded instead of sent."""
    start_worker(overrides={"RETRY_SCHEDULE": [0, 3, 3], "RETRY_JITTER": 0})
    receiver.script("/hook", Reply(status=500))
    sub = make_subscription(receiver.url("/hook"), ["order.*"])
    event = Event.objects.create(type="order.created", data={"n": 1})
    fan_out(event.pk)
    delivery = Delivery.objects.get(event=event)
    assert wait_until(lambda: Delivery.objects.get(pk=delivery.pk).status == "retrying")
    Subscription.objects.filter(pk=sub.pk).update(event_types=["invoice.*"])

    assert wait_until(
        lambda: Delivery.objects.get(pk=delivery.pk).status == DeliveryStatus.DISCARDED,
        timeout=20,
    )
    assert receiver.counts["/hook"] == 1
    assert Delivery.objects.get(pk=delivery.pk).attempt_set.count() == 1
