"""DRF throttles per user and per tenant, and the bound on failed logins."""

from __future__ import annotations

import base64

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from deliveries.models import Event
from subscriptions.models import Subscription
from tests.factories import api_client, make_subscription, make_tenant_user, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def rates(settings):
    def apply(**scopes):
        settings.WEBHOOKS = {**settings.WEBHOOKS, "THROTTLE_RATES": scopes}

    return apply


def new(n: int, **extra) -> dict:
    return {"url": f"http://127.0.0.1:9/{n}", "event_types": ["*"], **extra}


def test_creation_is_throttled_per_user_and_per_tenant(rates):
    rates(create="3/hour")
    alice = api_client(make_tenant_user("alice", "org_a"))
    bob = api_client(make_tenant_user("bob", "org_a"))
    carol = api_client(make_tenant_user("carol", "org_b"))

    codes = [alice.post("/api/subscriptions/", new(n)).status_code for n in range(2)]
    codes += [bob.post("/api/subscriptions/", new(2)).status_code]
    # The tenant's budget is spent by its two users together; the next one waits.
    refused = bob.post("/api/subscriptions/", new(3))
    assert codes == [201, 201, 201] and refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    assert Subscription.objects.for_tenant("org_a").count() == 3
    # Another tenant has its own budget.
    assert carol.post("/api/subscriptions/", new(4)).status_code == 201
    # Reading is never throttled.
    assert alice.get("/api/subscriptions/").status_code == 200


def test_a_user_budget_binds_across_tenants(rates):
    rates(publish="2/minute")
    client = api_client(make_user("backend", "add_event"))
    answers = [
        client.post(
            "/api/events/", {"type": "a.b", "data": {}, "tenant": f"org_{n}"}, format="json"
        ).status_code
        for n in range(3)
    ]
    assert answers == [202, 202, 429]
    assert Event.objects.count() == 2


def test_publishing_is_throttled_per_tenant_of_the_event(rates):
    rates(publish="2/minute")
    publishers = [api_client(make_user(name, "add_event")) for name in ("one", "two", "three")]
    body = {"type": "a.b", "data": {}, "tenant": "org_a"}
    answers = [p.post("/api/events/", body, format="json").status_code for p in publishers]
    assert answers == [202, 202, 429]
    other = {"type": "a.b", "data": {}, "tenant": "org_b"}
    assert publishers[2].post("/api/events/", other, format="json").status_code == 202


def test_a_tenant_user_cannot_spend_another_tenants_budget(rates):
    rates(create="1/hour")
    mallory = api_client(make_tenant_user("mallory", "org_m"))
    # Naming another tenant is refused (400) and counts against mallory's own tenant.
    assert (
        mallory.post("/api/subscriptions/", new(1, tenant="org_v"), format="json").status_code
        == 400
    )
    victim = api_client(make_tenant_user("victim", "org_v"))
    assert victim.post("/api/subscriptions/", new(2)).status_code == 201


def test_test_events_replays_and_retries_are_throttled(rates, broker):
    from tests.ops_helpers import make_delivery

    rates(test="1/minute", replay="1/minute", retry="1/minute")
    owner = make_tenant_user("owner", "org_a")
    client = api_client(owner)
    sub = make_subscription("http://127.0.0.1:9/x", tenant="org_a", owner=owner)
    delivery = make_delivery(sub)
    since = {"since": "2026-01-01T00:00:00Z"}
    for url, body in (
        (f"/api/subscriptions/{sub.pk}/test/", None),
        (f"/api/subscriptions/{sub.pk}/replay/", since),
        (f"/api/deliveries/{delivery.pk}/retry/", None),
    ):
        assert client.post(url, body, format="json").status_code == 202, url
        assert client.post(url, body, format="json").status_code == 429, url


def test_refused_requests_spend_no_budget(rates, broker):
    # 404s and 409s did nothing: they must not use up the budget for what does (the issue:
    # 60 refused replays spent the default tenant's replay budget for an hour).
    import uuid

    rates(test="2/minute")
    owner = make_tenant_user("owner", "org_a")
    client = api_client(owner)
    sub = make_subscription("http://127.0.0.1:9/x", tenant="org_a", owner=owner, is_active=False)
    test_url = f"/api/subscriptions/{sub.pk}/test/"

    refused = [client.post(test_url).status_code for _ in range(5)]
    refused += [client.post(f"/api/subscriptions/{uuid.uuid4()}/test/").status_code for _ in "ab"]

    assert refused == [409] * 5 + [404] * 2
    Subscription.objects.filter(pk=sub.pk).update(is_active=True)
    assert [client.post(test_url).status_code for _ in range(3)] == [202, 202, 429]


def basic(username: str, password: str) -> dict:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {token}"}


def test_failed_logins_are_bounded_per_address_and_user_name(rates):
    rates(failed_login="3/minute")
    make_tenant_user("alice", "org_a", password="right")
    client = APIClient()
    wrong = [
        client.get("/api/subscriptions/", **basic("alice", "wrong")).status_code for _ in range(3)
    ]
    assert wrong == [401, 401, 401]
    # The budget is spent: even the right password waits, so guessing cannot go on.
    blocked = client.get("/api/subscriptions/", **basic("alice", "right"))
    assert blocked.status_code == 429 and int(blocked["Retry-After"]) > 0
    # From another address, the user name is still bounded ...
    other = APIClient(REMOTE_ADDR="10.0.0.9")
    assert other.get("/api/subscriptions/", **basic("alice", "right")).status_code == 429
    # ... but other users from that address are not.
    make_tenant_user("bob", "org_a", password="pw")
    assert other.get("/api/subscriptions/", **basic("bob", "pw")).status_code == 200


def test_a_client_chosen_forwarded_for_does_not_escape_the_bound(rates):
    # The issue: 25 sprayed logins, each with a new X-Forwarded-For, got 25 x 401 and no 429.
    rates(failed_login="5/minute")
    make_tenant_user("alice", "org_a", password="right")
    answers = [
        APIClient(HTTP_X_FORWARDED_FOR=f"198.51.100.{n}")
        .get("/api/subscriptions/", **basic(f"user{n}", "wrong"))
        .status_code
        for n in range(25)
    ]
    assert answers == [401] * 5 + [429] * 20


@pytest.mark.parametrize(
    "trusted", [1, ["127.0.0.0/8", "10.0.0.0/8"]], ids=["one-proxy", "proxy-networks"]
)
def test_trusted_proxies_say_which_forwarded_for_entry_is_the_client(rates, settings, trusted):
    rates(failed_login="2/minute")
    settings.WEBHOOKS = {**settings.WEBHOOKS, "TRUSTED_PROXIES": trusted}
    make_tenant_user("alice", "org_a", password="right")

    def attempt(forwarded: str, user: str, password: str = "wrong") -> int:
        client = APIClient(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=forwarded)
        return client.get("/api/subscriptions/", **basic(user, password)).status_code

    # The client writes what it likes on the left; the proxy appends the address it saw.
    spray = [attempt(f"203.0.113.{n}, 192.0.2.1", f"u{n}") for n in range(4)]
    assert spray == [401, 401, 429, 429]
    # Another client behind the same proxy has a budget of its own.
    assert attempt("192.0.2.2", "alice", "right") == 200


def test_the_admin_login_form_is_bounded_too(rates, client):
    # The issue: 40 wrong passwords in the admin, then the right one logged in.
    rates(failed_login="3/minute")
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_superuser("root", password="right-password")
    login = "/admin/login/?next=/admin/"
    for _ in range(4):
        client.post(login, {"username": "root", "password": "wrong"})

    response = client.post(login, {"username": "root", "password": "right-password"})

    assert "_auth_user_id" not in client.session
    assert response.status_code == 200  # the form again, no redirect into the admin
    # The admin's failures and the API's Basic share the counters.
    assert APIClient().get("/api/tenants/", **basic("root", "right-password")).status_code == 429


def test_others_failed_passwords_never_refuse_a_valid_token(rates):
    rates(failed_login="2/minute")
    alice = make_tenant_user("alice", "org_a", password="right")
    token = Token.objects.create(user=alice)
    for _ in range(10):
        APIClient().get("/api/subscriptions/", **basic("alice", "wrong"))
    assert APIClient().get("/api/subscriptions/", **basic("alice", "right")).status_code == 429

    # Same address, and even the same user name: the lock per name is for passwords only.
    by_token = APIClient(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert by_token.get("/api/subscriptions/").status_code == 200


def test_token_guessing_is_bounded_per_address(rates):
    rates(failed_login="2/minute")
    token = Token.objects.create(user=make_tenant_user("u", "org_a"))
    client = APIClient()
    for _ in range(2):
        client.credentials(HTTP_AUTHORIZATION="Token guessed")
        assert client.get("/api/subscriptions/").status_code == 401
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.get("/api/subscriptions/").status_code == 429
    elsewhere = APIClient(REMOTE_ADDR="10.0.0.7")
    elsewhere.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert elsewhere.get("/api/subscriptions/").status_code == 200


def test_successful_logins_are_not_counted(rates):
    rates(failed_login="2/minute")
    make_tenant_user("alice", "org_a", password="right")
    client = APIClient()
    answers = [
        client.get("/api/subscriptions/", **basic("alice", "right")).status_code for _ in range(5)
    ]
    assert answers == [200] * 5


def test_long_tenant_keys_make_short_cache_keys(rates, recwarn):
    # Tenant keys reach 255 characters; cache keys over 250 break memcached. Hashed, two keys
    # that differ in their last character still have budgets of their own.
    rates(publish="1/minute")

    def publisher(name: str) -> APIClient:
        return api_client(make_user(name, "add_event"))

    long_key = {"type": "a.b", "data": {}, "tenant": "k" * 255}
    neighbour = {**long_key, "tenant": "k" * 254 + "j"}
    assert publisher("one").post("/api/events/", long_key, format="json").status_code == 202
    assert publisher("two").post("/api/events/", neighbour, format="json").status_code == 202
    assert publisher("three").post("/api/events/", long_key, format="json").status_code == 429
    assert not [w for w in recwarn if "Cache key" in str(w.message)]
