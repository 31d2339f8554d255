"""Receiver authentication beside the signature: mutual TLS with a per-subscription client
certificate, and OAuth2 client credentials (RFC 6749 §4.4) with a cached bearer token that is
refreshed once on a 401. Real parts on loopback: a TLS server that requires client
certificates (tests/certs.py), an OAuth2 token endpoint and a bearer-protected receiver
(tests/tokens.py)."""

from __future__ import annotations

import time

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from deliveries import oauth2
from deliveries.models import Delivery, DeliveryAttempt, DeliveryStatus, ErrorKind, Event
from deliveries.services.attempts import attempt_delivery, is_retryable
from subscriptions.models import Subscription
from tests.certs import ClientPem, Pki, make_client_cert, make_pki, mtls_server_context
from tests.factories import make_subscription, make_tenant_user
from tests.hostile import HostileServer
from tests.stubdns import resolving
from tests.tokens import TokenServer

pytestmark = pytest.mark.django_db(transaction=True)

CLIENT_ID, CLIENT_SECRET = "webhooks-client", "s3cret:with/odd chars"


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"), ["hooks.test"])


@pytest.fixture(scope="module")
def client_pem(pki) -> ClientPem:
    return make_client_cert(pki.ca.parent, "sender")


@pytest.fixture(scope="module")
def stranger_pem(tmp_path_factory) -> ClientPem:
    """A client certificate from a CA the receiver does not trust."""
    other = make_pki(tmp_path_factory.mktemp("other"), ["elsewhere.test"])
    return make_client_cert(other.ca.parent, "stranger")


@pytest.fixture
def mtls(pki, webhooks):
    webhooks(CA_BUNDLE=str(pki.ca))
    server = HostileServer(ssl_context=mtls_server_context(pki)).start()
    with resolving({"hooks.test": ["127.0.0.1"]}):
        yield server
    server.stop()


@pytest.fixture
def tokens():
    oauth2.clear_cache()
    server = TokenServer(CLIENT_ID, CLIENT_SECRET).start()
    yield server
    server.stop()
    oauth2.clear_cache()


def deliver(subscription: Subscription) -> Delivery:
    event = Event.objects.create(type="order.created", data={"n": 1}, fanned_out_at=timezone.now())
    delivery = Delivery.objects.create(
        event=event, subscription=subscription, next_attempt_at=timezone.now()
    )
    attempt_delivery(delivery.pk, 1)
    return Delivery.objects.get(pk=delivery.pk)


# --- mTLS -------------------------------------------------------------------------------------


def test_the_client_certificate_is_presented_to_a_receiver_that_requires_one(mtls, client_pem):
    sub = make_subscription(
        mtls.url("/hook", host="hooks.test"),
        tls_client_cert=client_pem.cert,
        tls_client_key=client_pem.key,
    )
    assert deliver(sub).status == DeliveryStatus.SUCCEEDED
    assert mtls.client_subjects == ["sender"]
    assert mtls.counts["/hook"] == 1
    # A second delivery reuses the connection made with that certificate.
    assert deliver(sub).status == DeliveryStatus.SUCCEEDED
    assert mtls.client_subjects == ["sender"] and mtls.counts["/hook"] == 2


def test_without_a_certificate_or_with_an_untrusted_one_the_receiver_refuses(mtls, stranger_pem):
    bare = deliver(make_subscription(mtls.url("/hook", host="hooks.test")))
    stranger = deliver(
        make_subscription(
            mtls.url("/hook", host="hooks.test"),
            tls_client_cert=stranger_pem.cert,
            tls_client_key=stranger_pem.key,
        )
    )
    for delivery in (bare, stranger):
        attempt = DeliveryAttempt.objects.get(delivery=delivery)
        assert attempt.error_kind == ErrorKind.CONNECTION and attempt.response_status is None
    assert mtls.counts["/hook"] == 0


def test_api_takes_the_pair_never_shows_the_key_and_refuses_a_mismatch(client_pem, stranger_pem):
    api = APIClient()
    api.force_authenticate(make_tenant_user("ann", "acme"))
    body = {
        "url": "http://127.0.0.1:9/x",
        "event_types": ["*"],
        "tls_client_cert": client_pem.cert,
        "tls_client_key": client_pem.key,
    }
    created = api.post("/api/subscriptions/", body, format="json")
    assert created.status_code == 201, created.json()
    assert "tls_client_key" not in created.json()
    assert created.json()["tls_client_cert"] == client_pem.cert
    sub_id = created.json()["id"]
    shown = api.get(f"/api/subscriptions/{sub_id}/")
    assert "PRIVATE KEY" not in shown.content.decode()

    mismatch = api.patch(
        f"/api/subscriptions/{sub_id}/", {"tls_client_cert": stranger_pem.cert}, format="json"
    )
    assert mismatch.status_code == 400
    assert "does not belong" in str(mismatch.json()["tls_client_key"])
    half = {**body, "tls_client_key": ""}
    assert api.post("/api/subscriptions/", half, format="json").json() == {
        "tls_client_key": ["A client certificate and its key go together."]
    }
    garbage = {**body, "tls_client_cert": "-----BEGIN CERTIFICATE-----\nno\n"}
    assert "tls_client_cert" in api.post("/api/subscriptions/", garbage, format="json").json()
    # Both emptied: mTLS off.
    off = api.patch(
        f"/api/subscriptions/{sub_id}/",
        {"tls_client_cert": "", "tls_client_key": ""},
        format="json",
    )
    assert off.status_code == 200
    assert Subscription.objects.get(pk=sub_id).tls_client_key == ""


# --- OAuth2 -----------------------------------------------------------------------------------


def oauth_subscription(tokens: TokenServer, **fields) -> Subscription:
    defaults = {
        "oauth2_token_url": tokens.url("/token"),
        "oauth2_client_id": CLIENT_ID,
        "oauth2_client_secret": CLIENT_SECRET,
        "oauth2_scope": "webhooks:write",
    }
    return make_subscription(tokens.url("/hook"), **{**defaults, **fields})


def test_token_is_fetched_once_sent_as_bearer_and_cached(tokens):
    sub = oauth_subscription(tokens)
    assert deliver(sub).status == DeliveryStatus.SUCCEEDED
    assert deliver(sub).status == DeliveryStatus.SUCCEEDED

    [request] = tokens.token_requests
    assert (request.client_id, request.client_secret) == (CLIENT_ID, CLIENT_SECRET)
    assert request.form == {"grant_type": "client_credentials", "scope": "webhooks:write"}
    assert [auth for _, auth in tokens.deliveries] == ["Bearer token-1", "Bearer token-1"]
    # The attempt row records that an authorization header went, never its value.
    for headers in DeliveryAttempt.objects.values_list("request_headers", flat=True):
        assert "token-1" not in str(headers) and "authorization" in headers


def test_a_token_that_expires_at_once_is_not_reused(tokens):
    tokens.expires_in = 0
    sub = oauth_subscription(tokens)
    deliver(sub)
    deliver(sub)
    assert len(tokens.token_requests) == 2
    assert [auth for _, auth in tokens.deliveries] == ["Bearer token-1", "Bearer token-2"]


def test_a_401_fetches_a_new_token_once_within_the_same_attempt(tokens):
    sub = oauth_subscription(tokens)
    deliver(sub)
    tokens.revoke_all()  # the receiver now refuses token-1
    delivery = deliver(sub)

    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert [auth for _, auth in tokens.deliveries] == [
        "Bearer token-1",
        "Bearer token-1",
        "Bearer token-2",
    ]
    assert DeliveryAttempt.objects.filter(delivery=delivery).count() == 1


def test_a_receiver_that_keeps_answering_401_gets_one_refresh_only(tokens):
    tokens.dead_on_arrival = True  # every token issued is refused by the receiver
    delivery = deliver(oauth_subscription(tokens))
    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    assert attempt.response_status == 401
    assert len(tokens.token_requests) == 2 and len(tokens.deliveries) == 2


def test_a_failing_token_endpoint_fails_the_attempt_without_calling_the_receiver(tokens):
    tokens.token_status = 503
    delivery = deliver(oauth_subscription(tokens))
    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    assert attempt.error_kind == ErrorKind.CONNECTION
    assert "OAuth2 token endpoint" in attempt.error and "503" in attempt.error
    assert tokens.deliveries == []
    assert delivery.status != DeliveryStatus.FAILED  # retried on the schedule


def test_wrong_credentials_are_a_token_failure(tokens):
    delivery = deliver(oauth_subscription(tokens, oauth2_client_secret="wrong"))
    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    assert "OAuth2 token endpoint" in attempt.error and "401" in attempt.error
    assert tokens.deliveries == []


def test_the_token_endpoint_is_behind_the_ssrf_guard(tokens, webhooks):
    sub = oauth_subscription(tokens)
    webhooks(ALLOW_PRIVATE_NETWORKS=False)
    delivery = deliver(sub)
    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    assert attempt.error_kind == ErrorKind.BLOCKED and "OAuth2 token endpoint" in attempt.error
    assert tokens.token_requests == [] and tokens.deliveries == []


def test_a_hanging_token_endpoint_is_cut_by_the_attempts_deadline(tokens, webhooks):
    webhooks(TIMEOUT=2)
    tokens.token_delay = 6
    started = time.monotonic()
    delivery = deliver(oauth_subscription(tokens))
    elapsed = time.monotonic() - started
    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    assert attempt.error_kind == ErrorKind.TIMEOUT
    assert is_retryable(
        oauth2.SendResult(error_kind=attempt.error_kind)  # the retry schedule applies
    )
    assert elapsed < 5.5  # the endpoint would have taken 6 s; the deadline is 2 s
    assert tokens.deliveries == []


def test_api_oauth2_is_write_only_and_validated(tokens, webhooks):
    api = APIClient()
    api.force_authenticate(make_tenant_user("ann", "acme"))
    oauth = {
        "token_url": tokens.url("/token"),
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "scope": "a b",
    }
    body = {"url": tokens.url("/hook"), "event_types": ["*"], "oauth2": oauth}
    created = api.post("/api/subscriptions/", body, format="json")
    assert created.status_code == 201, created.json()
    shown = created.json()["oauth2"]
    assert shown == {"token_url": oauth["token_url"], "client_id": CLIENT_ID, "scope": "a b"}
    assert CLIENT_SECRET not in created.content.decode()
    sub_id = created.json()["id"]
    assert Subscription.objects.get(pk=sub_id).oauth2_client_secret == CLIENT_SECRET

    # Omitted, the secret is kept while the token URL stays on its origin...
    same = {k: v for k, v in oauth.items() if k != "client_secret"}
    kept = api.patch(
        f"/api/subscriptions/{sub_id}/", {"oauth2": {**same, "scope": "c"}}, format="json"
    )
    assert kept.status_code == 200, kept.json()
    assert Subscription.objects.get(pk=sub_id).oauth2_client_secret == CLIENT_SECRET
    # ...and must come again when it moves elsewhere.
    moved = api.patch(
        f"/api/subscriptions/{sub_id}/",
        {"oauth2": {**same, "token_url": "http://127.0.0.2:9/token"}},
        format="json",
    )
    assert moved.status_code == 400 and "client_secret" in moved.json()["oauth2"]
    # A url move to another origin must restate oauth2 (the token is the old receiver's).
    url_moved = api.patch(
        f"/api/subscriptions/{sub_id}/", {"url": "http://127.0.0.2:9/hook"}, format="json"
    )
    assert url_moved.status_code == 400 and "oauth2" in url_moved.json()
    dropped = api.patch(
        f"/api/subscriptions/{sub_id}/",
        {"url": "http://127.0.0.2:9/hook", "oauth2": None},
        format="json",
    )
    assert dropped.status_code == 200 and dropped.json()["oauth2"] is None
    assert Subscription.objects.get(pk=sub_id).oauth2_client_secret == ""

    bad = api.post(
        "/api/subscriptions/",
        {**body, "oauth2": {"token_url": "ftp://x", "client_id": "", "scope": 'a"b', "x": 1}},
        format="json",
    )
    assert bad.status_code == 400
    assert set(bad.json()["oauth2"]) == {"token_url", "client_id", "client_secret", "scope", "x"}
    webhooks(ALLOW_PRIVATE_NETWORKS=False)
    private = api.post(
        "/api/subscriptions/",
        {
            "url": "https://93.184.215.14/hook",
            "event_types": ["*"],
            "oauth2": {**oauth, "token_url": "https://169.254.169.254/token"},
        },
        format="json",
    )
    assert private.status_code == 400
    assert "not a public address" in str(private.json()["oauth2"]["token_url"])
