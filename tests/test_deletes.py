"""Deleting an endpoint keeps its history and raises nothing: the API, the admin and the portal
stop its deliveries at once, erase its secrets and header values, and keep its deliveries and
attempts (marked "endpoint deleted") until retention prunes them. Deleting a user never
deletes endpoints."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from deliveries.models import Delivery, DeliveryAttempt, DeliveryStatus, Event
from deliveries.services import attempt_delivery, maintenance, publish
from subscriptions.models import Subscription
from subscriptions.services import delete_subscription
from tests.factories import make_subscription, make_tenant_user
from tests.ops_helpers import make_delivery
from tests.portal_helpers import open_portal, portal_url
from tests.procs import wait_until
from tests.receiver import Reply

pytestmark = pytest.mark.django_db


HEADERS = {"Authorization": "Bearer sk_live_1"}


@pytest.fixture
def endpoint():
    """An endpoint of org_a with a header, a history (one success) and one delivery waiting."""
    sub = make_subscription("http://127.0.0.1:9/hook", tenant="org_a", headers=HEADERS)
    done = make_delivery(sub, DeliveryStatus.SUCCEEDED, attempts=[(200, 12)])
    waiting = make_delivery(
        sub, DeliveryStatus.RETRYING, attempts=[(500, 8)], next_attempt_at=timezone.now()
    )
    return sub, done, waiting


def assert_deleted_with_history(sub: Subscription, done: Delivery, waiting: Delivery) -> None:
    row = Subscription.all_objects.get(pk=sub.pk)
    assert row.deleted_at is not None and not row.is_active
    assert (row.secret, row.previous_secret, row.headers) == ("", "", {})
    assert not Subscription.objects.filter(pk=sub.pk).exists()
    done.refresh_from_db()
    waiting.refresh_from_db()
    assert done.status == DeliveryStatus.SUCCEEDED
    assert DeliveryAttempt.objects.filter(delivery__subscription_id=sub.pk).count() == 2
    assert waiting.status == DeliveryStatus.DISCARDED
    assert "deleted" in waiting.last_error and waiting.next_attempt_at is None


def test_the_api_delete_keeps_history_and_the_event_marks_it(endpoint):
    sub, done, waiting = endpoint
    api = APIClient()
    api.force_authenticate(make_tenant_user("owner", "org_a"))

    response = api.delete(f"/api/subscriptions/{sub.pk}/")

    assert response.status_code == 204, response.content
    assert_deleted_with_history(sub, done, waiting)
    assert api.get(f"/api/subscriptions/{sub.pk}/").status_code == 404
    assert api.get("/api/subscriptions/").json()["count"] == 0
    event = api.get(f"/api/events/{done.event_id}/").json()
    assert [(d["id"], d["endpoint_deleted"]) for d in event["deliveries"]] == [(done.pk, True)]
    listed = api.get("/api/deliveries/").json()["results"]
    assert {d["id"] for d in listed} == {done.pk, waiting.pk}
    assert api.delete(f"/api/subscriptions/{sub.pk}/").status_code == 404


def test_the_admin_delete_needs_the_same_permission_as_the_api(endpoint, django_user_model, client):
    sub, done, waiting = endpoint
    # Exactly what the API asks of someone deleting across tenants: no delivery permission.
    user = django_user_model.objects.create_user("ops", password="pw", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_subscription", "delete_subscription"])
    )
    client.force_login(user)
    url = reverse("admin:webhook_subscriptions_subscription_delete", args=[sub.pk])

    confirm = client.get(url)
    assert confirm.status_code == 200
    assert "permission" not in confirm.content.decode().lower()
    response = client.post(url, {"post": "yes"})

    assert response.status_code == 302
    assert_deleted_with_history(sub, done, waiting)


def test_the_admin_event_page_lists_the_deliveries_marked_endpoint_deleted(endpoint, admin_client):
    sub, done, _waiting = endpoint
    url = reverse("admin:webhook_subscriptions_subscription_changelist")
    response = admin_client.post(
        url, {"action": "delete_selected", "_selected_action": [sub.pk], "post": "yes"}
    )
    assert response.status_code == 302

    page = admin_client.get(reverse("admin:deliveries_event_change", args=[done.event_id]))
    assert "endpoint deleted" in page.content.decode()
    listing = admin_client.get(reverse("admin:deliveries_delivery_changelist")).content.decode()
    assert listing.count("endpoint deleted") == 2
    assert Subscription.all_objects.get(pk=sub.pk).deleted_at is not None


def test_the_portal_delete_keeps_history(endpoint, client):
    sub, done, waiting = endpoint
    open_portal(client, "org_a")

    confirm = client.get(portal_url("endpoint-delete", sub.pk)).content.decode()
    assert "stays in the delivery log" in confirm
    response = client.post(portal_url("endpoint-delete", sub.pk))

    assert response.status_code == 302
    assert_deleted_with_history(sub, done, waiting)
    detail = client.get(portal_url("delivery", done.pk)).content.decode()
    assert 'id="endpoint-deleted"' in detail
    assert "endpoint deleted" in client.get(portal_url("deliveries")).content.decode()
    assert client.get(portal_url("endpoint", sub.pk)).status_code == 404


def test_deleting_a_user_leaves_their_endpoints(django_user_model):
    user = make_tenant_user("leaver", "org_a")
    sub = make_subscription("http://127.0.0.1:9/hook", tenant="org_a", owner=user)
    done = make_delivery(sub, DeliveryStatus.SUCCEEDED, attempts=[(200, 5)])

    user.delete()

    sub.refresh_from_db()
    assert sub.owner_id is None and sub.is_active
    assert Delivery.objects.filter(pk=done.pk).exists()


def test_a_message_queued_before_the_delete_sends_nothing(receiver):
    sub = make_subscription(receiver.url("/gone"), tenant="org_a")
    delivery = make_delivery(sub, DeliveryStatus.PENDING, next_attempt_at=timezone.now())
    delete_subscription(sub)
    outcome = attempt_delivery(delivery.pk, 1)

    assert outcome.action in ("done", "skip")
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DISCARDED and receiver.counts["/gone"] == 0


def test_retention_removes_a_deleted_endpoint_with_its_last_delivery():
    old = timezone.now() - dt.timedelta(days=60)
    sub = make_subscription("http://127.0.0.1:9/hook", tenant="org_a")
    make_delivery(sub, DeliveryStatus.SUCCEEDED, attempts=[(200, 5)], created_at=old)
    kept = make_subscription("http://127.0.0.1:9/kept", tenant="org_a")
    delete_subscription(sub)
    delete_subscription(kept)
    make_delivery(Subscription.all_objects.get(pk=kept.pk), DeliveryStatus.SUCCEEDED)

    maintenance.prune()

    assert not Subscription.all_objects.filter(pk=sub.pk).exists()
    assert Subscription.all_objects.filter(pk=kept.pk).exists()  # its history is still young
    assert not Event.objects.filter(deliveries__subscription_id=sub.pk).exists()


@pytest.mark.integration
def test_a_post_in_flight_when_its_endpoint_is_deleted_is_recorded_without_an_error(
    worker, receiver
):
    receiver.script("/slow", Reply(200, delay=1.5))
    sub = make_subscription(receiver.url("/slow"), tenant="org_a", headers=HEADERS)
    event = publish("order.created", {"n": 1}, tenant="org_a")
    assert receiver.wait_for(1, "/slow", timeout=30), worker.output()
    delete_subscription(sub)

    delivery = Delivery.objects.get(event=event)
    assert wait_until(
        lambda: Delivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.SUCCEEDED).exists(),
        timeout=30,
    ), worker.output()
    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    assert attempt.response_status == 200  # recorded, not dropped
    log = worker.output()
    assert " ERROR" not in log and "Traceback" not in log and "raised" not in log, log
    assert receiver.counts["/slow"] == 1
