"""Per-tenant limits: subscriptions per tenant, and deliveries in flight per tenant."""

from __future__ import annotations

import pytest
from django.urls import reverse

from deliveries.services import inflight
from subscriptions.models import Subscription, Tenant
from tests.factories import api_client, make_subscription, make_tenant_user, make_user

pytestmark = pytest.mark.django_db


def body(n: int) -> dict:
    return {"url": f"http://127.0.0.1:9/{n}", "event_types": ["*"]}


# --- Subscriptions per tenant -------------------------------------------------------------------


def test_the_subscription_limit_answers_403_and_creates_nothing(webhooks):
    webhooks(TENANT_MAX_SUBSCRIPTIONS=2)
    alice = api_client(make_tenant_user("alice", "org_a"))
    bob = api_client(make_tenant_user("bob", "org_b"))
    assert [alice.post("/api/subscriptions/", body(n)).status_code for n in range(2)] == [201, 201]

    refused = alice.post("/api/subscriptions/", body(3), format="json")

    assert refused.status_code == 403
    assert refused.json()["detail"] == (
        "Tenant 'org_a' has reached its limit of 2 subscriptions; delete one or ask for a "
        "higher limit."
    )
    assert Subscription.objects.for_tenant("org_a").count() == 2
    # Another tenant has its own count.
    assert bob.post("/api/subscriptions/", body(4)).status_code == 201
    # Deleting one makes room again.
    first = Subscription.objects.for_tenant("org_a").first()
    assert alice.delete(f"/api/subscriptions/{first.pk}/").status_code == 204
    assert alice.post("/api/subscriptions/", body(5)).status_code == 201


def test_a_tenants_own_limit_overrides_the_default_and_binds_operators():
    Tenant.objects.filter(pk=Tenant.objects.for_key("org_a").pk).update(max_subscriptions=1)
    make_subscription("http://127.0.0.1:9/x", tenant="org_a")
    client = api_client(make_user("operator", "add_subscription"))

    refused = client.post("/api/subscriptions/", {**body(1), "tenant": "org_a"}, format="json")
    assert refused.status_code == 403 and "limit of 1" in refused.json()["detail"]
    accepted = client.post("/api/subscriptions/", {**body(1), "tenant": "org_b"}, format="json")
    assert accepted.status_code == 201 and accepted.json()["tenant"] == "org_b"
    assert Subscription.objects.count() == 2


def test_the_default_tenant_counts_subscriptions_by_its_own_row_only(webhooks):
    # A single-tenant project is one tenant: the per-customer count must not cap it. Its
    # deliveries in flight are capped like every tenant's (test_default_tenant_is_capped...).
    webhooks(TENANT_MAX_SUBSCRIPTIONS=1, TENANT_MAX_IN_FLIGHT=1)
    user = api_client(make_user("operator", "add_subscription"))
    assert [user.post("/api/subscriptions/", body(n)).status_code for n in range(3)] == [201] * 3
    default = Tenant.objects.default()
    assert (default.subscription_limit, default.in_flight_limit) == (None, 1)
    default.max_subscriptions = 3
    default.save()
    assert user.post("/api/subscriptions/", body(9)).status_code == 403
    assert (Tenant.objects.for_key("org_a").subscription_limit) == 1


def test_the_admin_refuses_a_subscription_beyond_the_limit(admin_client, webhooks):
    webhooks(TENANT_MAX_SUBSCRIPTIONS=1)
    make_subscription("http://127.0.0.1:9/x", tenant="org_a")
    response = admin_client.post(
        reverse("admin:webhook_subscriptions_subscription_add"),
        {
            "tenant": "org_a",
            "url": "http://127.0.0.1:9/hook",
            "event_types": '["*"]',
            "is_active": "on",
            "payload_format": "standard",
            "headers": "",
        },
    )
    assert response.status_code == 200
    assert "has reached its limit of 1 subscriptions" in response.content.decode()
    assert Subscription.objects.count() == 1


# --- Deliveries in flight per tenant --------------------------------------------------------------


def test_the_tenant_cap_counts_every_endpoint_of_the_tenant(broker, webhooks):
    webhooks(MAX_IN_FLIGHT=10, TENANT_MAX_IN_FLIGHT=3)
    a1 = make_subscription("http://127.0.0.1:9/a1", tenant="org_a")
    a2 = make_subscription("http://127.0.0.1:9/a2", tenant="org_a")
    b = make_subscription("http://127.0.0.1:9/b", tenant="org_b")

    held = [inflight.acquire(a1), inflight.acquire(a1), inflight.acquire(a2)]
    assert all(held)
    assert inflight.acquire(a2) is None and inflight.acquire(a1) is None
    assert inflight.tenant_in_flight("org_a") == 3
    # A refusal by the tenant cap takes nothing from the endpoint's own count.
    assert inflight.in_flight(a2.pk) == 1
    # Another tenant is not affected.
    assert inflight.acquire(b) is not None
    held[0].release()
    assert inflight.tenant_in_flight("org_a") == 2 and inflight.in_flight(a1.pk) == 1
    again = inflight.acquire(a2)
    assert again is not None and inflight.in_flight(a2.pk) == 2


def test_default_tenant_is_capped_like_every_tenant(broker, webhooks):
    # Whoever reaches the default tenant must not hold every worker slot (issue: 60 hanging
    # endpoints of the default tenant held all 40 threads while another tenant waited).
    webhooks(MAX_IN_FLIGHT=10, TENANT_MAX_IN_FLIGHT=2)
    inflight.forget_tenant_limits()
    mine = make_subscription("http://127.0.0.1:9/d1")  # the default tenant
    also = make_subscription("http://127.0.0.1:9/d2")
    assert mine.tenant_id == Tenant.objects.default().pk

    held = [inflight.acquire(mine), inflight.acquire(also)]

    assert all(h is not None and h is not inflight.UNCAPPED for h in held)
    assert inflight.acquire(mine) is None and inflight.acquire(also) is None
    assert inflight.tenant_in_flight(mine.tenant_id) == 2
    held[0].release()
    assert inflight.acquire(also) is not None


def test_a_tenants_own_in_flight_cap_applies_and_changes_apply_at_once(broker, webhooks):
    webhooks(MAX_IN_FLIGHT=None, TENANT_MAX_IN_FLIGHT=50)
    sub = make_subscription("http://127.0.0.1:9/a", tenant="org_a")
    tenant = Tenant.objects.get(pk="org_a")
    tenant.max_in_flight = 1
    tenant.save()  # the worker's cached cap is dropped on save
    first = inflight.acquire(sub)
    assert first is not None and first is not inflight.UNCAPPED
    assert inflight.acquire(sub) is None
    tenant.max_in_flight = None
    tenant.save()
    assert inflight.acquire(sub) is not None
