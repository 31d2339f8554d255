"""Standard Webhooks `v1a` (ed25519) signatures, per subscription.

The reference `standardwebhooks` package (1.3) verifies `v1` only and skips other entries, so
it is the judge of `v1` beside `v1a`; the `v1a` entries are checked by two independent ed25519
implementations, `cryptography` (OpenSSL) and PyNaCl (libsodium), and by our receiver toolkit.
"""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from cryptography.exceptions import InvalidSignature as BadSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.utils import timezone
from rest_framework.test import APIClient
from standardwebhooks import Webhook, WebhookVerificationError

import webhooks_receiver
from deliveries.models import Delivery, DeliveryStatus, Event
from deliveries.services.attempts import attempt_delivery
from deliveries.signing import signature_header
from subscriptions import services
from subscriptions.models import Subscription
from subscriptions.secrets import generate_secret, generate_signing_key, public_key
from tests.factories import make_subscription, make_tenant_user

nacl_signing = pytest.importorskip("nacl.signing")


def raw_public(whpk: str) -> bytes:
    assert whpk.startswith("whpk_")
    return base64.b64decode(whpk.removeprefix("whpk_"), validate=True)


def v1a_entries(header: str) -> list[bytes]:
    return [
        base64.b64decode(entry.partition(",")[2])
        for entry in header.split()
        if entry.startswith("v1a,")
    ]


def test_v1a_entries_verify_with_two_independent_ed25519_implementations():
    key = generate_signing_key()
    whpk = public_key(key)
    body = b'{"type":"order.created","data":{"n":1}}'
    header = signature_header([key], "msg_1", 1_700_000_000, body)
    signed = b"msg_1.1700000000." + body
    [signature] = v1a_entries(header)
    assert header.startswith("v1a,") and len(signature) == 64

    Ed25519PublicKey.from_public_bytes(raw_public(whpk)).verify(signature, signed)
    nacl_signing.VerifyKey(raw_public(whpk)).verify(signed, signature)
    with pytest.raises(BadSignature):
        Ed25519PublicKey.from_public_bytes(raw_public(whpk)).verify(signature, signed + b" ")
    # Another key's public half does not verify it.
    other = raw_public(public_key(generate_signing_key()))
    with pytest.raises(BadSignature):
        Ed25519PublicKey.from_public_bytes(other).verify(signature, signed)


def test_the_reference_library_reads_v1_beside_v1a_and_does_not_know_v1a():
    secret, key = generate_secret(), generate_signing_key()
    body = b'{"type":"a.b","timestamp":"2024-01-01T00:00:00Z","data":{}}'
    now = int(timezone.now().timestamp())
    headers = {"webhook-id": "msg_2", "webhook-timestamp": str(now)}
    both = {**headers, "webhook-signature": signature_header([secret, key], "msg_2", now, body)}
    assert Webhook(secret).verify(body, both)["type"] == "a.b"
    only_v1a = {**headers, "webhook-signature": signature_header([key], "msg_2", now, body)}
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, only_v1a)


def test_receiver_toolkit_verifies_v1a_with_the_public_key():
    key = generate_signing_key()
    body = b'{"type":"a.b","data":{"x":1}}'
    now = int(timezone.now().timestamp())
    headers = {
        "webhook-id": "msg_3",
        "webhook-timestamp": str(now),
        "webhook-signature": signature_header([key], "msg_3", now, body),
    }
    assert webhooks_receiver.verify(public_key(key), body, headers)["data"] == {"x": 1}
    # A key among others (a rotation), and a secret beside it, still verify.
    assert webhooks_receiver.verify([generate_secret(), public_key(key)], body, headers)
    with pytest.raises(webhooks_receiver.InvalidSignature):
        webhooks_receiver.verify(public_key(key), body + b" ", headers)
    with pytest.raises(webhooks_receiver.InvalidSignature):
        webhooks_receiver.verify(public_key(generate_signing_key()), body, headers)
    # A v1 entry made with bytes equal to the public key is no v1a signature.
    with pytest.raises(webhooks_receiver.InvalidSignature):
        webhooks_receiver.verify(generate_secret(), body, headers)
    with pytest.raises(ValueError, match="32 bytes"):
        webhooks_receiver.verify("whpk_" + base64.b64encode(b"short").decode(), body, headers)


@pytest.mark.django_db
def test_scheme_chooses_the_keys_and_v1a_always_has_one():
    sub = make_subscription("http://127.0.0.1:9/")
    assert sub.signing_secrets() == [sub.secret] and sub.public_key is None
    sub.signature_scheme = "v1a"
    sub.save(update_fields=["signature_scheme"])
    fresh = Subscription.objects.get(pk=sub.pk)
    assert fresh.signing_key.startswith("whsk_")
    assert fresh.signing_secrets() == [fresh.signing_key]
    assert fresh.public_key == public_key(fresh.signing_key)
    fresh.signature_scheme = "v1 v1a"
    assert fresh.signing_secrets() == [fresh.secret, fresh.signing_key]


@pytest.mark.django_db
def test_rotation_rotates_the_v1a_key_with_the_asked_overlap():
    sub = make_subscription("http://127.0.0.1:9/", signature_scheme="v1 v1a")
    old_secret, old_key = sub.secret, sub.signing_key
    services.rotate_secret(sub, overlap=60)
    fresh = Subscription.objects.get(pk=sub.pk)
    assert fresh.previous_signing_key == old_key and fresh.signing_key != old_key
    assert fresh.signing_secrets() == [fresh.secret, old_secret, fresh.signing_key, old_key]
    later = fresh.previous_secret_expires_at + dt.timedelta(seconds=1)
    assert fresh.signing_secrets(later) == [fresh.secret, fresh.signing_key]

    services.rotate_secret(fresh, overlap=0)
    assert Subscription.objects.get(pk=sub.pk).signing_secrets() == [
        fresh.secret,
        fresh.signing_key,
    ]


@pytest.mark.django_db(transaction=True)
def test_a_delivery_carries_v1_and_v1a_that_every_verifier_accepts(receiver):
    sub = make_subscription(receiver.url("/both"), signature_scheme="v1 v1a")
    event = Event.objects.create(type="order.created", data={"n": 7}, fanned_out_at=timezone.now())
    delivery = Delivery.objects.create(
        event=event, subscription=sub, next_attempt_at=timezone.now()
    )
    assert attempt_delivery(delivery.pk, 1).action == "done"
    assert Delivery.objects.get(pk=delivery.pk).status == DeliveryStatus.SUCCEEDED
    request = receiver.requests_to("/both")[-1]
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert [e.partition(",")[0] for e in headers["webhook-signature"].split()] == ["v1", "v1a"]
    assert Webhook(sub.secret).verify(request.body, headers)["data"] == {"n": 7}
    assert webhooks_receiver.verify(sub.public_key, request.body, headers)["data"] == {"n": 7}
    signed = b"%s.%s.%s" % (
        headers["webhook-id"].encode(),
        headers["webhook-timestamp"].encode(),
        request.body,
    )
    [signature] = v1a_entries(headers["webhook-signature"])
    nacl_signing.VerifyKey(raw_public(sub.public_key)).verify(signed, signature)


@pytest.mark.django_db
def test_api_sets_the_scheme_shows_the_public_key_and_rotates_with_an_overlap(settings):
    user = make_tenant_user("ann", "acme")
    api = APIClient()
    api.force_authenticate(user)
    created = api.post(
        "/api/subscriptions/",
        {"url": "http://127.0.0.1:9/x", "event_types": ["*"], "signature_scheme": "v1a"},
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["signature_scheme"] == "v1a" and body["public_key"].startswith("whpk_")
    assert body["secret"].startswith("whsec_")
    sub = Subscription.objects.get(pk=body["id"])
    assert sub.signing_key not in created.content.decode()
    shown = api.get(f"/api/subscriptions/{sub.pk}/").json()
    assert shown["public_key"] == body["public_key"] and "secret" not in shown
    assert sub.signing_key not in str(shown)

    bad = api.patch(f"/api/subscriptions/{sub.pk}/", {"signature_scheme": "v2"}, format="json")
    assert bad.status_code == 400 and "signature_scheme" in bad.json()

    rotated = api.post(f"/api/subscriptions/{sub.pk}/rotate-secret/", {"overlap": 0})
    assert rotated.status_code == 200
    assert rotated.json()["public_key"] not in (None, body["public_key"])
    fresh = Subscription.objects.get(pk=sub.pk)
    assert fresh.previous_secret_expires_at <= timezone.now()
    assert fresh.signing_secrets() == [fresh.signing_key]

    week = api.post(f"/api/subscriptions/{sub.pk}/rotate-secret/", {"overlap": 604800})
    assert week.status_code == 200
    expires = Subscription.objects.get(pk=sub.pk).previous_secret_expires_at
    assert dt.timedelta(days=7, seconds=-60) < expires - timezone.now() <= dt.timedelta(days=7)
    for wrong in (-1, 604801, "soon"):
        refused = api.post(f"/api/subscriptions/{sub.pk}/rotate-secret/", {"overlap": wrong})
        assert refused.status_code == 400 and "overlap" in refused.json()

    settings.WEBHOOKS = {**settings.WEBHOOKS, "SECRET_ROTATION_OVERLAP": 120}
    api.post(f"/api/subscriptions/{sub.pk}/rotate-secret/", {})
    expires = Subscription.objects.get(pk=sub.pk).previous_secret_expires_at
    assert dt.timedelta(seconds=60) < expires - timezone.now() <= dt.timedelta(seconds=120)


@pytest.mark.django_db
def test_admin_shows_the_public_key_never_a_private_value(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", "r@example.com", "pw"))
    sub = make_subscription(
        "http://127.0.0.1:9/",
        signature_scheme="v1a",
        oauth2_token_url="http://127.0.0.1:9/token",
        oauth2_client_id="id",
        oauth2_client_secret="oauth-secret-value",
    )
    page = client.get(f"/admin/webhook_subscriptions/subscription/{sub.pk}/change/")
    text = page.content.decode()
    assert sub.public_key in text
    for private in (sub.signing_key, sub.secret, "oauth-secret-value"):
        assert private not in text
