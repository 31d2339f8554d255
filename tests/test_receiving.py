"""The receiver toolkit (`webhooks_receiver`), checked against the reference `standardwebhooks`
package both ways, and its Django decorator and base view through the test client."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest
import standardwebhooks
from django.http import HttpResponse, JsonResponse
from django.test import Client, override_settings
from django.urls import path

from deliveries.signing import signature, signature_header
from subscriptions.secrets import generate_secret
from tests.procs import ROOT
from webhooks_receiver import (
    InvalidSignature,
    MalformedWebhook,
    StaleTimestamp,
    verify,
    verify_event,
)
from webhooks_receiver.django import WebhookView, webhook_view

BODY = b'{"type":"order.created","timestamp":"2026-01-01T00:00:00Z","data":{"id":1}}'
MSG_ID = "0191f1c3-6a8e-7e1a-9e53-1a2b3c4d5e6f"


def signed_headers(secrets: list[str], body: bytes = BODY, *, msg_id: str = MSG_ID, ts=None):
    ts = int(time.time()) if ts is None else ts
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": signature_header(secrets, msg_id, ts, body),
    }


# --- both directions against the reference implementation ------------------------------------


def test_reference_signs_and_we_verify():
    secret = generate_secret()
    now = datetime.now(tz=UTC)
    header = standardwebhooks.Webhook(secret).sign(MSG_ID, now, BODY.decode())
    headers = {
        "webhook-id": MSG_ID,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": header,
    }

    assert verify(secret, BODY, headers) == json.loads(BODY)


def test_we_sign_and_reference_verifies():
    secret = generate_secret()
    headers = signed_headers([secret])

    assert standardwebhooks.Webhook(secret).verify(BODY, headers) == json.loads(BODY)
    assert verify(secret, BODY, headers) == json.loads(BODY)


def test_rotation_two_signatures_either_secret_verifies():
    old, new = generate_secret(), generate_secret()
    headers = signed_headers([new, old])

    assert len(headers["webhook-signature"].split()) == 2
    for secret in (old, new):
        assert standardwebhooks.Webhook(secret).verify(BODY, headers)
        assert verify(secret, BODY, headers)
    with pytest.raises(InvalidSignature):
        verify(generate_secret(), BODY, headers)


def test_receiver_holding_both_secrets_accepts_either_sender_state():
    old, new = generate_secret(), generate_secret()

    assert verify([old, new], BODY, signed_headers([old]))
    assert verify([old, new], BODY, signed_headers([new]))
    with pytest.raises(InvalidSignature):
        verify([old, new], BODY, signed_headers([generate_secret()]))


def test_raw_key_bytes_are_accepted_as_secret():
    secret = generate_secret()
    key = standardwebhooks.Webhook(secret)._whsecret

    assert verify(key, BODY, signed_headers([secret]))


# --- tampering and timestamps -------------------------------------------------------------------


@pytest.mark.parametrize(
    "tamper",
    [
        lambda h, b: (h, b.replace(b'"id":1', b'"id":2')),
        lambda h, b: ({**h, "webhook-id": MSG_ID[:-1] + "0"}, b),
        lambda h, b: ({**h, "webhook-timestamp": str(int(h["webhook-timestamp"]) - 1)}, b),
        lambda h, b: ({**h, "webhook-signature": h["webhook-signature"][:-6] + "AAAAA="}, b),
    ],
    ids=["body", "id", "timestamp", "signature"],
)
def test_any_tampering_is_refused_by_us_and_by_the_reference(tamper):
    secret = generate_secret()
    headers, body = tamper(signed_headers([secret]), BODY)

    with pytest.raises(InvalidSignature) as exc:
        verify(secret, body, headers)
    assert exc.value.status == 401
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(secret).verify(body, headers)


@pytest.mark.parametrize("offset", [-301, 301, -86400, 86400])
def test_timestamps_beyond_tolerance_either_way_are_refused(offset):
    secret = generate_secret()
    now = time.time()
    headers = signed_headers([secret], ts=int(now) + offset)

    with pytest.raises(StaleTimestamp) as exc:
        verify(secret, BODY, headers, now=now)
    assert exc.value.status == 401
    assert ("future" in str(exc.value)) == (offset > 0)


@pytest.mark.parametrize("offset", [-299, 0, 299])
def test_timestamps_within_tolerance_either_way_are_accepted(offset):
    secret = generate_secret()
    now = time.time()

    assert verify(secret, BODY, signed_headers([secret], ts=int(now) + offset), now=now)


def test_tolerance_is_configurable():
    secret = generate_secret()
    now = time.time()
    headers = signed_headers([secret], ts=int(now) - 100)

    with pytest.raises(StaleTimestamp):
        verify(secret, BODY, headers, tolerance=60, now=now)
    assert verify(secret, BODY, headers, tolerance=120, now=now)


# --- malformed input ----------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_header_is_malformed(missing):
    secret = generate_secret()
    headers = signed_headers([secret])
    del headers[missing]

    with pytest.raises(MalformedWebhook, match=missing) as exc:
        verify(secret, BODY, headers)
    assert exc.value.status == 400


def test_non_integer_timestamp_is_malformed():
    secret = generate_secret()
    headers = {**signed_headers([secret]), "webhook-timestamp": "yesterday"}

    with pytest.raises(MalformedWebhook, match="timestamp"):
        verify(secret, BODY, headers)


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]"])
def test_signed_body_that_is_not_a_json_object_is_malformed(body):
    secret = generate_secret()

    with pytest.raises(MalformedWebhook):
        verify(secret, body, signed_headers([secret], body))


def test_header_names_are_case_insensitive_and_body_may_be_str():
    secret = generate_secret()
    headers = {name.title(): value for name, value in signed_headers([secret]).items()}

    assert verify(secret, BODY.decode(), headers)


def test_unknown_versions_and_garbage_entries_are_skipped():
    secret = generate_secret()
    ts = int(time.time())
    good = signature(secret, MSG_ID, ts, BODY)
    headers = {
        "webhook-id": MSG_ID,
        "webhook-timestamp": str(ts),
        "webhook-signature": f"v1a,{good[3:]} v1,!!notbase64!! v2,abc {good}",
    }

    assert verify(secret, BODY, headers)
    headers["webhook-signature"] = f"v1a,{good[3:]} v1,!!notbase64!!"
    with pytest.raises(InvalidSignature):
        verify(secret, BODY, headers)


def test_bad_secret_is_a_configuration_error_not_a_rejection():
    with pytest.raises(ValueError, match="whsec_"):
        verify("whsec_%%%", BODY, signed_headers([generate_secret()]))
    with pytest.raises(ValueError):
        verify([], BODY, signed_headers([generate_secret()]))


def test_verify_event_exposes_id_timestamp_type_and_data():
    secret = generate_secret()
    headers = signed_headers([secret], ts=1_800_000_000)

    event = verify_event(secret, BODY, headers, now=1_800_000_010)

    assert event.id == MSG_ID
    assert event.timestamp == datetime.fromtimestamp(1_800_000_000, tz=UTC)
    assert (event.type, event.data, event.body) == ("order.created", {"id": 1}, BODY)


def test_core_module_imports_without_django():
    code = (
        "import sys, webhooks_receiver; "
        "assert not [m for m in sys.modules if m.split('.')[0] in "
        "('django', 'deliveries', 'subscriptions', 'celery')], sorted(sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env={}
    )

    assert result.returncode == 0, result.stderr


# --- Django views -------------------------------------------------------------------------------

SECRET = generate_secret()
OTHER_SECRET = generate_secret()
calls: list[tuple[str, dict]] = []
failures: list[int] = []


@webhook_view(secret=lambda request: [SECRET, OTHER_SECRET], dedupe=True)
def deduped_hook(request, event):
    calls.append((event.id, event.payload))
    if failures:
        return HttpResponse(status=failures.pop())
    return None


@webhook_view(secret=SECRET)
def plain_hook(request, event, tenant):
    calls.append((event.id, event.payload))
    return JsonResponse({"tenant": tenant, "type": event.type})


class OrdersHook(WebhookView):
    secret = SECRET

    def handle(self, request, event):
        calls.append((event.id, event.payload))
        return HttpResponse("ok")


urlpatterns = [
    path("hooks/deduped/", deduped_hook),
    path("hooks/<str:tenant>/plain/", plain_hook),
    path("hooks/class/", OrdersHook.as_view()),
]


@pytest.fixture
def client():
    calls.clear()
    failures.clear()
    # CSRF enforced as in production: the views must be exempt to receive anything.
    return Client(enforce_csrf_checks=True)


def post(client, url, headers, body=BODY):
    return client.generic(
        "POST",
        url,
        body,
        content_type="application/json",
        headers=headers,
    )


pytestmark = pytest.mark.urls(__name__)


def test_decorated_view_gets_the_verified_event(client):
    response = post(client, "/hooks/acme/plain/", signed_headers([SECRET]))

    assert response.status_code == 200
    assert response.json() == {"tenant": "acme", "type": "order.created"}
    assert calls == [(MSG_ID, json.loads(BODY))]


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        (lambda: signed_headers([OTHER_SECRET]), 401),
        (lambda: signed_headers([SECRET], ts=int(time.time()) - 3600), 401),
        (lambda: {k: v for k, v in signed_headers([SECRET]).items() if k != "webhook-id"}, 400),
        (lambda: {**signed_headers([SECRET]), "webhook-timestamp": "soon"}, 400),
    ],
    ids=["wrong-secret", "stale", "no-id", "bad-timestamp"],
)
def test_decorated_view_refuses_without_calling_the_view(client, headers, status):
    response = post(client, "/hooks/acme/plain/", headers())

    assert response.status_code == status
    assert response["content-type"].startswith("text/plain")
    assert calls == []


def test_views_accept_only_post(client):
    assert client.get("/hooks/acme/plain/").status_code == 405
    assert client.get("/hooks/class/").status_code == 405
    assert calls == []


def test_base_view_verifies_and_hands_the_event(client):
    assert post(client, "/hooks/class/", signed_headers([SECRET])).status_code == 200
    assert post(client, "/hooks/class/", signed_headers([OTHER_SECRET])).status_code == 401
    assert calls == [(MSG_ID, json.loads(BODY))]


LOCMEM = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


@override_settings(CACHES=LOCMEM)
def test_dedupe_handles_an_id_once_and_answers_repeats_with_200(client):
    from django.core.cache import cache

    cache.clear()
    first = post(client, "/hooks/deduped/", signed_headers([SECRET]))
    # A retry is signed again with a new timestamp, and maybe with the other secret.
    again = post(client, "/hooks/deduped/", signed_headers([OTHER_SECRET], ts=int(time.time())))
    other = post(client, "/hooks/deduped/", signed_headers([SECRET], msg_id="another-id"))

    assert (first.status_code, again.status_code, other.status_code) == (204, 200, 204)
    assert [msg_id for msg_id, _ in calls] == [MSG_ID, "another-id"]


@override_settings(CACHES=LOCMEM)
def test_dedupe_forgets_an_id_whose_handling_failed(client):
    from django.core.cache import cache

    cache.clear()
    failures.append(500)
    first = post(client, "/hooks/deduped/", signed_headers([SECRET]))
    retry = post(client, "/hooks/deduped/", signed_headers([SECRET]))

    assert (first.status_code, retry.status_code) == (500, 204)
    assert len(calls) == 2


@override_settings(CACHES=LOCMEM)
def test_dedupe_answers_409_while_another_request_handles_the_id(client):
    from django.core.cache import cache

    cache.clear()
    in_flight = []

    @webhook_view(secret=SECRET, dedupe=True)
    def slow_hook(request, event):
        # While this request is handling the id, the same delivery arrives again.
        in_flight.append(post(client, "/hooks/deduped/", signed_headers([SECRET])).status_code)
        return HttpResponse(status=200)

    from django.test import RequestFactory

    request = RequestFactory().post(
        "/x", BODY, content_type="application/json", headers=signed_headers([SECRET])
    )

    assert slow_hook(request).status_code == 200
    assert in_flight == [409]
    assert calls == []
    assert post(client, "/hooks/deduped/", signed_headers([SECRET])).status_code == 200
