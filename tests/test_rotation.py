"""Secret rotation: both secrets sign during the overlap, only the new one after it.

Receivers are the reference `standardwebhooks` package, each holding a single secret. The
clock is controlled by moving `previous_secret_expires_at` into the past, not by sleeping.
"""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient
from standardwebhooks import Webhook, WebhookVerificationError

from deliveries.models import Delivery, DeliveryAttempt, DeliveryStatus
from deliveries.services import publish
from subscriptions import services
from subscriptions.models import Subscription
from subscriptions.secrets import generate_secret, validate_secret
from tests.factories import make_subscription, make_tenant_user
from tests.procs import wait_until


def delivered(event) -> bool:
    return Delivery.objects.filter(event=event, status=DeliveryStatus.SUCCEEDED).exists()


@pytest.mark.django_db
def test_rotation_keeps_the_old_secret_for_the_overlap(settings):
    sub = make_subscription("http://127.0.0.1:9/a")
    old = sub.secret
    before = timezone.now()
    with override_settings(WEBHOOKS={**settings.WEBHOOKS, "SECRET_ROTATION_OVERLAP": 600}):
        new = services.rotate_secret(sub)

    validate_secret(new)
    fresh = Subscription.objects.get(pk=sub.pk)
    assert (fresh.secret, fresh.previous_secret) == (new, old)
    expected = before + dt.timedelta(seconds=600)
    assert abs((fresh.previous_secret_expires_at - expected).total_seconds()) < 5
    assert fresh.signing_secrets() == [new, old]
    later = fresh.previous_secret_expires_at + dt.timedelta(seconds=1)
    assert fresh.signing_secrets(later) == [new]
    assert (sub.secret, sub.previous_secret) == (new, old)  # the instance is updated too


@pytest.mark.django_db
def test_second_rotation_drops_the_oldest_secret():
    sub = make_subscription("http://127.0.0.1:9/a")
    first = sub.secret
    second = services.rotate_secret(sub)
    third = services.rotate_secret(sub, generate_secret(64))
    fresh = Subscription.objects.get(pk=sub.pk)
    assert fresh.signing_secrets() == [third, second]
    assert first not in fresh.signing_secrets()


@pytest.mark.django_db
def test_rotation_never_logs_a_secret(caplog):
    sub = make_subscription("http://127.0.0.1:9/a")
    old = sub.secret
    with caplog.at_level(logging.DEBUG):
        new = services.rotate_secret(sub)
    assert old not in caplog.text and new not in caplog.text


@pytest.mark.integration
def test_receivers_with_either_secret_verify_during_overlap_then_only_new(
    worker, receiver, django_user_model
):
    owner = make_tenant_user("owner", "default")
    sub = make_subscription(receiver.url("/rotating"), owner=owner)
    old_secret = sub.secret
    api = APIClient()
    api.force_authenticate(owner)
    rotated = api.post(f"/api/subscriptions/{sub.pk}/rotate-secret/")
    assert rotated.status_code == 200
    new_secret = rotated.json()["secret"]
    old_receiver, new_receiver = Webhook(old_secret), Webhook(new_secret)

    # During the overlap: two signatures, and each single-secret receiver accepts the delivery.
    during = publish("order.created", {"phase": "overlap"})
    assert wait_until(lambda: delivered(during))
    request = receiver.requests_to("/rotating")[-1]
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    assert old_receiver.verify(request.body, request.headers)["data"] == {"phase": "overlap"}
    assert new_receiver.verify(request.body, request.headers)["data"] == {"phase": "overlap"}

    # After it: only the new secret signs.
    Subscription.objects.filter(pk=sub.pk).update(
        previous_secret_expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    after = publish("order.created", {"phase": "after"})
    assert wait_until(lambda: delivered(after))
    request = receiver.requests_to("/rotating")[-1]
    assert len(request.headers["webhook-signature"].split(" ")) == 1
    assert new_receiver.verify(request.body, request.headers)["data"] == {"phase": "after"}
    with pytest.raises(WebhookVerificationError):
        old_receiver.verify(request.body, request.headers)

    # The worker's log (INFO) names the delivery, never a secret.
    log = worker.log.read_text(errors="replace")
    assert "attempt event=" in log
    assert old_secret not in log and new_secret not in log
    # Nor does the recorded attempt keep anything but the signature.
    for attempt_headers in DeliveryAttempt.objects.filter(delivery__subscription=sub).values_list(
        "request_headers", flat=True
    ):
        assert old_secret not in str(attempt_headers) and new_secret not in str(attempt_headers)


@pytest.mark.django_db
def test_admin_action_rotates_and_shows_the_new_secret_once(client, django_user_model):
    admin_user = django_user_model.objects.create_superuser("root", "r@example.com", "pw")
    client.force_login(admin_user)
    subs = [make_subscription(f"http://127.0.0.1:9/{i}") for i in range(2)]
    old = {s.pk: s.secret for s in subs}

    response = client.post(
        "/admin/webhook_subscriptions/subscription/",
        {"action": "rotate_secrets", "_selected_action": [str(s.pk) for s in subs]},
    )

    # The answer to the action shows them (no redirect, never cached); no message or session
    # keeps them for a later page.
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    text = response.content.decode()
    assert "Rotated the secrets of 2 subscriptions" in text
    later = client.get("/admin/webhook_subscriptions/subscription/").content.decode()
    for sub in Subscription.objects.filter(pk__in=old):
        assert sub.previous_secret == old[sub.pk] and sub.secret != old[sub.pk]
        assert sub.secret in text  # shown once, in the answer to the action
        assert sub.secret not in later and sub.secret not in repr(dict(client.session))
    # The change page shows no secret, old or new.
    page = client.get(f"/admin/webhook_subscriptions/subscription/{subs[0].pk}/change/")
    fresh = Subscription.objects.get(pk=subs[0].pk)
    assert fresh.secret not in page.content.decode()
    assert fresh.previous_secret not in page.content.decode()
