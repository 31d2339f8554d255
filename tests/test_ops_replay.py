"""Redelivery and replay: the API, the service and, end to end, a real worker and receiver."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from deliveries.models import Delivery, DeliveryStatus
from deliveries.services import publish, replay
from tests.factories import make_subscription, make_tenant_user
from tests.ops_helpers import make_delivery, roll_up
from tests.procs import wait_until
from tests.receiver import Reply

FINISHED = [DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED, DeliveryStatus.DISCARDED]


def wait_settled(queryset, count, timeout=30):
    return wait_until(lambda: queryset.filter(status__in=FINISHED).count() >= count, timeout)


@pytest.mark.integration
def test_replay_since_t_resends_exactly_the_failed_deliveries_with_original_ids(
    worker, receiver, staff_client
):
    # Given two endpoints that reject everything (400: failed after one attempt)...
    receiver.script("/a", Reply(400))
    receiver.script("/b", Reply(400))
    a = make_subscription(receiver.url("/a"), ["order.*"])
    b = make_subscription(receiver.url("/b"), ["order.*"])
    before = publish("order.created", {"n": 0})
    assert wait_settled(Delivery.objects.filter(event=before), 2)
    # ...one failed delivery older than T, ...
    t = timezone.now()
    Delivery.objects.filter(event=before).update(created_at=t - dt.timedelta(hours=1))
    after = [publish("order.created", {"n": n}) for n in (1, 2, 3)]
    assert wait_settled(Delivery.objects.filter(event__in=after), 6)
    # ...and, after T, a delivery to A that succeeded (A was briefly fixed) and one more B failure.
    receiver.script("/a", Reply(200))
    ok = publish("order.paid", {"n": 4})
    assert wait_settled(Delivery.objects.filter(event=ok), 2)
    receiver.script("/a", Reply(200))
    receiver.script("/b", Reply(200))
    seen_a, seen_b = len(receiver.requests_to("/a")), len(receiver.requests_to("/b"))

    # When the operator replays A since T (default statuses: failed and discarded)...
    response = staff_client.post(
        f"/api/subscriptions/{a.pk}/replay/", {"since": t.isoformat()}, format="json"
    )

    # ...the answer counts the three failed deliveries after T, and exactly those arrive at A,
    # with their original webhook-ids; nothing more reaches B.
    assert response.status_code == 202, response.content
    assert response.json()["queued"] == 3
    assert response.json()["status"] == ["failed", "discarded"]
    assert receiver.wait_for(seen_a + 3, path="/a")
    assert wait_until(
        lambda: (
            Delivery.objects.filter(subscription=a, event__in=after, status="succeeded").count()
            == 3
        )
    )
    replayed = receiver.requests_to("/a")[seen_a:]
    assert sorted(r.headers["webhook-id"] for r in replayed) == sorted(str(e.id) for e in after)
    assert len(receiver.requests_to("/b")) == seen_b
    assert Delivery.objects.get(subscription=a, event=before).status == DeliveryStatus.FAILED
    assert set(Delivery.objects.filter(subscription=b).values_list("status", flat=True)) == {
        "failed"
    }
    assert Delivery.objects.get(subscription=a, event=ok).attempts == 1  # succeeded: not replayed
    # One more attempt on the same rows, numbered after the first.
    for delivery in Delivery.objects.filter(subscription=a, event__in=after):
        assert list(delivery.attempt_set.values_list("number", "response_status")) == [
            (1, 400),
            (2, 200),
        ]


@pytest.mark.integration
def test_retry_endpoint_sends_again_with_the_same_webhook_id(worker, receiver, staff_client):
    receiver.script("/r", Reply(400), Reply(200))
    make_subscription(receiver.url("/r"))
    event = publish("order.created", {})
    assert wait_settled(Delivery.objects.filter(event=event), 1)
    delivery = Delivery.objects.get(event=event)
    assert delivery.status == DeliveryStatus.FAILED

    response = staff_client.post(f"/api/deliveries/{delivery.pk}/retry/")

    assert response.status_code == 202
    assert response.json() == {"id": delivery.pk, "queued": True, "attempt": 2}
    assert wait_until(
        lambda: Delivery.objects.get(pk=delivery.pk).status == DeliveryStatus.SUCCEEDED
    )
    ids = [r.headers["webhook-id"] for r in receiver.requests_to("/r")]
    assert ids == [str(event.id), str(event.id)]


@pytest.mark.django_db
def test_retry_of_another_tenants_delivery_is_404(broker):
    owner = make_tenant_user("owner", "tenant-a")
    other = make_tenant_user("other", "tenant-b")
    delivery = make_delivery(
        make_subscription("http://127.0.0.1:9/x", owner=owner, tenant="tenant-a")
    )
    client = APIClient()
    client.force_authenticate(other)
    assert client.post(f"/api/deliveries/{delivery.pk}/retry/").status_code == 404
    client.force_authenticate(owner)
    assert client.post(f"/api/deliveries/{delivery.pk}/retry/").status_code == 202
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.RETRYING


@pytest.mark.django_db
def test_retry_conflicts_while_sending_or_disabled(staff_client, broker):
    sub = make_subscription("http://127.0.0.1:9/x")
    sending = make_delivery(sub, DeliveryStatus.SENDING)
    assert staff_client.post(f"/api/deliveries/{sending.pk}/retry/").status_code == 409
    off = make_delivery(make_subscription("http://127.0.0.1:9/y", is_active=False))
    response = staff_client.post(f"/api/deliveries/{off.pk}/retry/")
    assert response.status_code == 409 and "disabled" in response.json()["detail"]
    off.refresh_from_db()
    assert off.status == DeliveryStatus.FAILED


@pytest.mark.django_db
def test_replay_api_validates_input_and_ownership(broker):
    owner = make_tenant_user("owner", "tenant-a")
    other = make_tenant_user("other", "tenant-b")
    sub = make_subscription("http://127.0.0.1:9/x", owner=owner, tenant="tenant-a")
    url = f"/api/subscriptions/{sub.pk}/replay/"
    client = APIClient()
    client.force_authenticate(other)
    assert client.post(url, {"since": "2026-01-01T00:00:00Z"}).status_code == 404
    client.force_authenticate(owner)
    assert client.post(url, {}).json() == {"since": ["This field is required."]}
    bad_status = client.post(url, {"since": "2026-01-01T00:00:00Z", "status": "pending"})
    assert bad_status.status_code == 400 and "status" in bad_status.json()
    backwards = client.post(url, {"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"})
    assert backwards.status_code == 400 and "until" in backwards.json()
    ok = client.post(url, {"since": "2026-01-01T00:00:00Z", "status": "failed,skipped"})
    assert ok.status_code == 202 and ok.json()["status"] == ["failed", "skipped"]


@pytest.mark.django_db
def test_run_replay_pages_through_matching_rows_only(broker):
    now = timezone.now()
    sub = make_subscription("http://127.0.0.1:9/x")
    other = make_subscription("http://127.0.0.1:9/y")
    inside = [
        make_delivery(sub, "failed", created_at=now - dt.timedelta(minutes=m)) for m in range(1, 8)
    ]
    skipped = make_delivery(sub, "skipped", created_at=now - dt.timedelta(minutes=2))
    too_old = make_delivery(sub, "failed", created_at=now - dt.timedelta(hours=2))
    elsewhere = make_delivery(other, "failed", created_at=now - dt.timedelta(minutes=2))
    done = make_delivery(sub, "succeeded", created_at=now - dt.timedelta(minutes=2))

    request = replay.build_request(sub, now - dt.timedelta(hours=1))
    assert request.deliveries().count() == 7
    assert replay.run_replay(request, batch_size=3) == 7

    reopened = set(Delivery.objects.filter(status="retrying").values_list("pk", flat=True))
    assert reopened == {d.pk for d in inside}
    for untouched in (skipped, too_old, elsewhere, done):
        assert Delivery.objects.get(pk=untouched.pk).status == untouched.status


@pytest.mark.django_db
def test_replay_refuses_disabled_subscription_and_unknown_status():
    sub = make_subscription("http://127.0.0.1:9/x", is_active=False)
    with pytest.raises(replay.ReplayError, match="disabled"):
        replay.build_request(sub, timezone.now() - dt.timedelta(hours=1))
    sub.is_active = True
    with pytest.raises(replay.ReplayError) as exc:
        replay.build_request(sub, timezone.now() - dt.timedelta(hours=1), statuses=["sending"])
    assert exc.value.field == "status"


@pytest.mark.integration
def test_operator_story_break_see_fix_replay_the_last_hour(worker, receiver, client, staff_user):
    """The issue's "done when": a receiver breaks, the admin shows it, it is fixed, one replay
    of the last hour from the admin brings every missed event."""
    client.force_login(staff_user)
    receiver.script("/shop", Reply(500))  # broken: every attempt of the schedule fails
    sub = make_subscription(receiver.url("/shop"), description="Shop")
    events = [publish("order.created", {"n": n}) for n in range(4)]
    assert wait_settled(Delivery.objects.filter(event__in=events), 4)
    assert set(Delivery.objects.filter(subscription=sub).values_list("status", flat=True)) == {
        "failed"
    }

    # The admin shows it: failing in a row on the list, first among the unhealthiest (once
    # the minute's roll-up has counted the attempts).
    roll_up()
    changelist = client.get("/admin/webhook_subscriptions/subscription/").content.decode()
    attempts = Delivery.objects.filter(subscription=sub).count() * 5  # schedule of 5 in tests
    assert f'<b style="color:#c62828">{attempts}</b>' in changelist
    assert "0.0%" in changelist
    dashboard = client.get("/admin/deliveries/delivery/dashboard/").content.decode()
    assert "Shop" in dashboard.split('id="unhealthy"')[1]

    # Fixed; one replay of the last hour (the form's default range) from the admin.
    receiver.script("/shop", Reply(200))
    before = len(receiver.requests_to("/shop"))
    form_url = f"/admin/webhook_subscriptions/subscription/replay/?ids={sub.pk}"
    form = client.get(form_url).content.decode()
    since = re.search(r'name="since" value="([^"]+)"', form).group(1)
    done = client.post(form_url, {"since": since, "status": ["failed", "discarded"]}, follow=True)
    assert "4 deliveries queued for replay." in done.content.decode()

    assert receiver.wait_for(before + 4, path="/shop")
    arrived = {r.headers["webhook-id"] for r in receiver.requests_to("/shop")[before:]}
    assert arrived == {str(e.id) for e in events}
    assert wait_until(
        lambda: Delivery.objects.filter(subscription=sub, status="succeeded").count() == 4
    )
