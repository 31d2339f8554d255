"""Nothing crosses tenants in the portal: every URL that names an object answers 404 for another
tenant's object (GET and POST, nothing changed), refused links show nothing, and a link for
tenant A never shows tenant B's data on any page."""

from __future__ import annotations

import pytest
from django.urls import get_resolver

from deliveries.models import Delivery, DeliveryStatus
from subscriptions.models import Subscription
from tests.ops_helpers import make_delivery
from tests.portal_helpers import open_portal, order_type, portal_url, tenant_endpoint
from webhooks_portal import access

pytestmark = pytest.mark.django_db

# Every portal route that names an object: the kind of object and the methods it accepts.
OBJECT_ROUTES = {
    "endpoint": ("subscription", {"get"}),
    "endpoint-edit": ("subscription", {"get", "post"}),
    "endpoint-edit-preview": ("subscription", {"post"}),
    "endpoint-disable": ("subscription", {"get", "post"}),
    "endpoint-enable": ("subscription", {"post"}),
    "endpoint-delete": ("subscription", {"get", "post"}),
    "endpoint-test": ("subscription", {"post"}),
    "endpoint-rotate": ("subscription", {"get", "post"}),
    "replay": ("subscription", {"get", "post"}),
    "delivery": ("delivery", {"get"}),
    "delivery-retry": ("delivery", {"post"}),
    "delivery-skip": ("delivery", {"post"}),
}
# Routes without an object id: their pages are checked for B's data instead.
LIST_ROUTES = [
    "endpoints",
    "endpoint-create",
    "catalog",
    "deliveries",
    "deliveries-retry",
    "verify",
]
# Routes that name an endpoint and an event type: see test_an_endpoints_version_page_...
ENDPOINT_TYPE_ROUTES = {"endpoint-version"}


def portal_routes() -> set[str]:
    namespace = get_resolver().namespace_dict["webhooks_portal"][1]
    return {name for name in namespace.reverse_dict if isinstance(name, str)}


def test_every_portal_route_is_covered_here():
    covered = (
        set(OBJECT_ROUTES)
        | set(LIST_ROUTES)
        | ENDPOINT_TYPE_ROUTES
        | {"home", "enter", "leave", "delivery-rows"}
        | {"endpoint-create-preview"}  # test_a_preview_for_a_never_shows_b below
    )

    assert portal_routes() == covered


@pytest.fixture
def tenants(client):
    """Tenant A's portal is open; tenant B has an endpoint and a failed delivery."""
    order_type()
    mine = tenant_endpoint("tenant-a", "http://127.0.0.1:9/a-hook", description="A hook")
    make_delivery(mine, DeliveryStatus.FAILED, attempts=[(500, 10)], data={"owner": "a"})
    theirs = tenant_endpoint(
        "tenant-b",
        "http://127.0.0.1:9/b-secret-hook",
        description="B private hook",
        headers={"X-B": "b-header"},
    )
    their_delivery = make_delivery(
        theirs, DeliveryStatus.FAILED, attempts=[(500, 10)], data={"owner": "b-private-data"}
    )
    open_portal(client, "tenant-a")
    return {"subscription": theirs, "delivery": their_delivery}


def unchanged(tenants) -> tuple:
    subscription = Subscription.objects.filter(pk=tenants["subscription"].pk).values().get()
    delivery = Delivery.objects.get(pk=tenants["delivery"].pk)
    return subscription, delivery.status, delivery.attempts, Delivery.objects.count()


@pytest.mark.parametrize(
    "route, method",
    [
        (route, method)
        for route, (_, methods) in sorted(OBJECT_ROUTES.items())
        for method in sorted(methods)
    ],
)
def test_another_tenants_object_is_a_404(client, tenants, route, method):
    target = tenants[OBJECT_ROUTES[route][0]]
    before = unchanged(tenants)

    response = getattr(client, method)(portal_url(route, target.pk))

    assert response.status_code == 404
    assert unchanged(tenants) == before  # nothing disabled, rotated, sent or replayed


@pytest.mark.parametrize(
    "route, method",
    [
        (route, method)
        for route, (_, methods) in sorted(OBJECT_ROUTES.items())
        for method in sorted({"get", "post"} - methods)
    ],
)
def test_a_method_a_route_refuses_is_refused_alike_for_every_tenant(client, tenants, route, method):
    kind = OBJECT_ROUTES[route][0]
    mine = (
        Subscription.objects.get(tenant_id="tenant-a")
        if kind == "subscription"
        else Delivery.objects.get(subscription__tenant_id="tenant-a")
    )

    foreign = getattr(client, method)(portal_url(route, tenants[kind].pk))
    own = getattr(client, method)(portal_url(route, mine.pk))

    assert foreign.status_code == own.status_code == 405  # says nothing about the object


@pytest.mark.parametrize("route", LIST_ROUTES)
def test_a_link_for_a_never_shows_b(client, tenants, route):
    response = client.get(portal_url(route))

    page = response.content.decode()
    assert response.status_code == 200
    for secret in ("b-secret-hook", "B private hook", "b-private-data", "b-header", "tenant-b"):
        assert secret not in page, f"{route} shows {secret}"
    assert str(tenants["subscription"].pk) not in page


def test_a_preview_for_a_never_shows_b(client, tenants, django_user_model):
    draft = {"event_types": ["*"], "filter": "", "channels": "", "url": "x"}
    response = client.post(portal_url("endpoint-create-preview"), draft)

    page = response.content.decode()
    assert response.status_code == 200
    assert "a-hook" not in page  # the draft's events are listed, not endpoints
    assert "&quot;owner&quot;: &quot;a&quot;" in page
    assert "b-private-data" not in page and "tenant-b" not in page
    # Logged in without a tenant: no preview either.
    client.post(portal_url("leave"))
    client.force_login(django_user_model.objects.create_user("nobody", password="pw"))
    assert client.post(portal_url("endpoint-create-preview"), draft).status_code == 403


def test_filtering_the_log_by_another_tenants_endpoint_shows_nothing(client, tenants):
    response = client.get(portal_url("deliveries"), {"endpoint": tenants["subscription"].pk})

    assert response.status_code == 400
    assert "data-delivery=" not in response.content.decode()


def test_retrying_the_matches_never_counts_or_touches_another_tenants(client, tenants, broker):
    theirs = tenants["delivery"]
    before = unchanged(tenants)

    count = client.get(portal_url("deliveries-retry"), {"status": "failed"})
    client.post(portal_url("deliveries-retry") + "?status=failed")

    assert "1 delivery matches" in count.content.decode()  # tenant-a's one, not b's
    assert unchanged(tenants)[1:3] == before[1:3]
    assert Delivery.objects.get(pk=theirs.pk).status == DeliveryStatus.FAILED
    assert Delivery.objects.exclude(pk=theirs.pk).get().status == DeliveryStatus.RETRYING


def test_the_logs_row_refresh_never_answers_another_tenants_row(client, tenants):
    theirs = tenants["delivery"]
    mine = Delivery.objects.exclude(pk=theirs.pk).get()

    response = client.get(portal_url("delivery-rows"), {"ids": f"{theirs.pk},{mine.pk}"})

    assert response.status_code == 200
    assert list(response.json()["rows"]) == [str(mine.pk)]
    assert "b-secret-hook" not in response.content.decode()


@pytest.mark.parametrize("expired", [True, False])
def test_a_refused_link_opens_nothing(client, tenants, monkeypatch, expired):
    client.post(portal_url("leave"))
    token = access.make_token("tenant-b")
    if expired:
        import time

        from django.core import signing

        later = time.time() + 10**6
        monkeypatch.setattr(signing.time, "time", lambda: later)
    else:
        token = token[:-1] + ("A" if token[-1] != "A" else "B")

    refused = client.get(access.entry_path(token))
    page = client.get(portal_url("endpoints"))

    assert refused.status_code == (403 if expired else 400)
    assert page.status_code == 403
    assert "B private hook" not in refused.content.decode() + page.content.decode()


# --- Logged in, no tenant, no permission: no portal ----------------------------------------


@pytest.mark.parametrize(
    "route, method",
    [(route, method) for route in sorted(OBJECT_ROUTES) for method in ("get", "post")]
    + [(route, method) for route in LIST_ROUTES for method in ("get", "post")],
)
def test_logging_in_alone_opens_no_portal_page(client, django_user_model, route, method):
    # Closed by default: the reference resolver puts a user in no tenant unless a
    # "tenant:<key>" group says so, and the portal belongs to a tenant.
    order_type()
    default = tenant_endpoint("default", "http://127.0.0.1:9/operator-hook", description="Ops")
    delivery = make_delivery(default, DeliveryStatus.FAILED, attempts=[(500, 10)])
    client.force_login(django_user_model.objects.create_user("nobody", password="pw"))
    target = {"subscription": default, "delivery": delivery}
    args = (target[OBJECT_ROUTES[route][0]].pk,) if route in OBJECT_ROUTES else ()
    before = Subscription.objects.filter(pk=default.pk).values().get()

    response = getattr(client, method)(portal_url(route, *args))

    assert response.status_code in (403, 405)
    assert "operator-hook" not in response.content.decode()
    assert Subscription.objects.filter(pk=default.pk).values().get() == before
    assert Subscription.objects.count() == 1


# --- Refusals carry the portal's security headers ---------------------------------------------


def assert_secured(response) -> None:
    assert "frame-ancestors" in response["Content-Security-Policy"]
    assert "no-store" in response["Cache-Control"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


def test_the_404_and_403_pages_carry_the_security_headers(client, tenants):
    missing = client.get(portal_url("endpoint", tenants["subscription"].pk))
    assert missing.status_code == 404
    assert "b-secret-hook" not in missing.content.decode()
    assert_secured(missing)

    client.post(portal_url("leave"))
    no_access = client.get(portal_url("endpoints"))
    assert no_access.status_code == 403
    assert_secured(no_access)


@pytest.mark.parametrize("method", ["get", "post"])
def test_an_endpoints_version_page_of_another_tenant_is_a_404(
    client, tenants, contract_types, method
):
    Subscription.objects.filter(pk=tenants["subscription"].pk).update(event_types=["*"])
    before = unchanged(tenants)

    response = getattr(client, method)(
        portal_url("endpoint-version", tenants["subscription"].pk, contract_types),
        {"version": 2},
    )

    assert response.status_code == 404
    assert unchanged(tenants) == before
