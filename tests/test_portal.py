"""The customer portal through Django's test client: getting in (links, the resolver), every
page and action, CSRF, the security headers, and overriding the look."""

from __future__ import annotations

import datetime as dt
import html
import re
import time

import pytest
from django.contrib.auth.models import Permission
from django.core import signing
from django.test import Client, override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from deliveries.models import Delivery, DeliveryStatus
from deliveries.services import replay
from subscriptions.models import Subscription, Tenant
from tests.factories import make_tenant_user
from tests.ops_helpers import make_delivery, roll_up
from tests.portal_helpers import open_portal, order_type, portal_url, tenant_endpoint
from webhooks_portal import access, replays
from webhooks_portal.conf import webhook_settings
from webhooks_receiver import verify

pytestmark = pytest.mark.django_db

TENANT = "acme"



def text(response) -> str:
    return response.content.decode()


def webhooks(**keys):
    from django.conf import settings

    return override_settings(WEBHOOKS={**settings.WEBHOOKS, **keys})


# --- Getting in: links --------------------------------------------------------------------


def test_a_link_opens_a_session_for_its_tenant_and_leaves_the_address_bar(client):
    tenant_endpoint(TENANT, description="Order sync")

    response = client.get(access.entry_path(access.make_token(TENANT)))

    assert response.status_code == 302
    assert response["Location"] == portal_url("endpoints")
    page = client.get(portal_url("endpoints"))
    assert page.status_code == 200
    assert "Order sync" in text(page)


def test_opening_a_link_cycles_the_session_key(client):
    client.get(portal_url("endpoints"))  # any page: a session may exist before the link
    session = client.session
    session["unrelated"] = "kept"
    session.save()
    before = session.session_key

    client.get(access.entry_path(access.make_token(TENANT)))

    assert client.session.session_key != before
    assert client.session["unrelated"] == "kept"


def test_an_expired_link_is_refused_with_403(client, monkeypatch):
    token = access.make_token(TENANT)
    later = time.time() + webhook_settings.PORTAL_LINK_MAX_AGE + 5
    monkeypatch.setattr(signing.time, "time", lambda: later)

    response = client.get(access.entry_path(token))

    assert response.status_code == 403
    assert "This portal link has expired" in text(response)
    assert access.SESSION_KEY not in client.session


def test_link_lifetime_follows_the_setting(client, monkeypatch):
    token = access.make_token(TENANT)
    later = time.time() + 120
    monkeypatch.setattr(signing.time, "time", lambda: later)

    with webhooks(PORTAL_LINK_MAX_AGE=60):
        assert client.get(access.entry_path(token)).status_code == 403
    with webhooks(PORTAL_LINK_MAX_AGE=600):
        assert client.get(access.entry_path(token)).status_code == 302


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"), id="signature"),
        pytest.param(lambda t: t.replace(t.split(":")[0], "eyJ0ZW5hbnQiOiJvdGhlciJ9"), id="body"),
        pytest.param(lambda t: signing.dumps({"tenant": TENANT}, salt="another"), id="salt"),
        pytest.param(lambda t: "garbage", id="garbage"),
    ],
)
def test_a_tampered_link_is_refused_with_400(client, token):
    response = client.get(access.entry_path(token(access.make_token(TENANT))))

    assert response.status_code == 400
    assert "This portal link is not valid" in text(response)
    assert client.get(portal_url("endpoints")).status_code == 403


def test_the_portal_session_ends_after_its_age(portal, monkeypatch):
    assert portal.get(portal_url("endpoints")).status_code == 200
    later = time.time() + webhook_settings.PORTAL_SESSION_AGE + 1
    monkeypatch.setattr(access.time, "time", lambda: later)

    assert portal.get(portal_url("endpoints")).status_code == 403


def test_leaving_ends_the_portal_session(portal):
    response = portal.post(portal_url("leave"))

    assert response.status_code == 200
    assert "You have left the portal" in text(response)
    assert portal.get(portal_url("endpoints")).status_code == 403


def test_without_a_link_or_a_login_the_portal_says_how_to_get_in(client):
    response = client.get(portal_url("endpoints"))

    assert response.status_code == 403
    assert "This page needs a portal link" in text(response)
    assert "/admin/login/?next=/portal/endpoints/" in text(response)


# --- Getting in: the host's own users through TENANT_RESOLVER -----------------------------


def test_a_logged_in_user_sees_the_tenant_the_resolver_names(client):
    tenant_endpoint(TENANT, description="Acme's hook")
    tenant_endpoint("globex", description="Globex's hook")
    client.force_login(make_tenant_user("ann", TENANT))

    page = text(client.get(portal_url("endpoints")))

    assert "Acme&#x27;s hook" in page
    assert "Globex" not in page
    # No portal link: nothing to leave, the host's login stays the way in.
    assert 'action="/portal/leave/"' not in page


def tenant_of_header(request):
    return request.headers.get("X-Org") or None


@pytest.mark.parametrize("org, status", [("globex", 200), (None, 403)])
def test_the_resolver_is_the_configured_one(client, django_user_model, org, status):
    tenant_endpoint("globex", description="Globex's hook")
    client.force_login(django_user_model.objects.create_user("bob"))
    headers = {"HTTP_X_ORG": org} if org else {}

    with webhooks(TENANT_RESOLVER="tests.test_portal.tenant_of_header"):
        response = client.get(portal_url("endpoints"), **headers)

    assert response.status_code == status
    if org:
        assert "Globex&#x27;s hook" in text(response)
    else:
        assert "not linked to any customer account" in text(response)


def test_a_link_session_wins_over_the_resolver(client):
    tenant_endpoint(TENANT, description="Acme's hook")
    tenant_endpoint("globex", description="Globex's hook")
    client.force_login(make_tenant_user("gus", "globex"))
    open_portal(client, TENANT, confirm=True)

    page = text(client.get(portal_url("endpoints")))

    assert "Acme&#x27;s hook" in page and "Globex" not in page


# --- The link API ---------------------------------------------------------------------------


def link_client(user=None) -> APIClient:
    api = APIClient()
    if user is not None:
        api.force_authenticate(user)
    return api


def test_the_link_api_answers_url_and_expiry_and_the_url_opens_the_portal(
    django_user_model, client
):
    backend = django_user_model.objects.create_user("backend")
    backend.user_permissions.add(Permission.objects.get(codename="change_subscription"))
    tenant_endpoint("org_42", description="Org 42 hook")

    before = timezone.now()
    response = link_client(backend).post("/api/tenants/org_42/portal-link/")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"url", "expires_at"}
    assert body["url"].startswith("http://testserver/portal/access/")
    expires = dt.datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert abs((expires - before).total_seconds() - webhook_settings.PORTAL_LINK_MAX_AGE) < 5
    client.get(body["url"].removeprefix("http://testserver"))
    assert "Org 42 hook" in text(client.get(portal_url("endpoints")))


def test_the_link_api_creates_the_tenant_on_first_use(django_user_model):
    admin = django_user_model.objects.create_superuser("root", password="pw")

    response = link_client(admin).post("/api/tenants/new_customer/portal-link/")

    assert response.status_code == 200
    assert Tenant.objects.filter(key="new_customer").exists()


def test_the_link_api_refuses_a_bad_key(django_user_model):
    admin = django_user_model.objects.create_superuser("root", password="pw")

    response = link_client(admin).post("/api/tenants/bad key!/portal-link/")

    assert response.status_code == 400
    assert "key" in response.json()


@pytest.mark.parametrize("who", ["anonymous", "staff without permission", "tenant user"])
def test_the_link_api_needs_the_model_permission(django_user_model, who):
    user = None
    if who == "staff without permission":
        user = django_user_model.objects.create_user("staff", is_staff=True)
    elif who == "tenant user":
        user = make_tenant_user("ann", TENANT)

    response = link_client(user).post(f"/api/tenants/{TENANT}/portal-link/")

    assert response.status_code in (401, 403)
    assert "url" not in response.json()


# --- Endpoints ------------------------------------------------------------------------------


def test_the_endpoint_list_shows_health(portal):
    now = timezone.now()
    good = tenant_endpoint(TENANT, description="Good", last_success_at=now)
    bad = tenant_endpoint(TENANT, description="Bad", failing_since=now - dt.timedelta(minutes=9))
    for _ in range(3):
        make_delivery(good, DeliveryStatus.SUCCEEDED, attempts=[(200, 40)])
    make_delivery(bad, DeliveryStatus.FAILED, attempts=[(500, 120), (503, 3000), (None, 20)])
    roll_up()

    page = text(portal.get(portal_url("endpoints")))

    rows = re.findall(r"<tr>(.*?)</tr>", page, re.S)
    good_row = next(r for r in rows if ">Good<" in r)
    bad_row = next(r for r in rows if ">Bad<" in r)
    assert "100.0%" in good_row and "≤ 50 ms" in good_row
    assert "0.0%" in bad_row and "≤ 5 s" in bad_row and "Failing" in bad_row
    assert re.search(r"Failures in a row[^>]*>3<", bad_row)
    assert page.count('class="webhooks-days"') == 2
    assert "Acme Inc." in page  # the tenant's name in the header


def test_the_endpoint_list_is_empty_for_a_new_tenant(portal):
    page = text(portal.get(portal_url("endpoints")))

    assert "No endpoints yet" in page


def assert_not_parked(client, secret: str) -> None:
    """`secret` is in neither the session nor any cookie (the messages cookie included)."""
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore(session_key=client.cookies["sessionid"].value).load()
    assert secret not in repr(session)
    assert all(secret not in morsel.value for morsel in client.cookies.values())


def create_data(**fields) -> dict:
    return {
        "url": "https://hooks.example.com/orders",
        "description": "Order sync",
        "event_types": ["order.created"],
        "payload_format": "standard",
        "headers": "",
        **fields,
    }


@pytest.fixture
def public_dns():
    """hooks.example.com resolves to a public address (the only mocked answer)."""
    from tests.stubdns import resolving

    with resolving({"hooks.example.com": ["93.184.216.34"]}):
        yield


def test_creating_an_endpoint_shows_its_secret_once(portal, public_dns):
    order_type()

    response = portal.post(portal_url("endpoint-create"), create_data())

    subscription = Subscription.objects.get()
    # Shown in the answer to the POST itself, never cached, never parked in the session or a
    # message for a later page.
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert subscription.tenant_id == TENANT
    assert subscription.event_types == ["order.created"]
    page = text(response)
    assert subscription.secret in page
    assert 'data-copy="#secret-value"' in page
    assert_not_parked(portal, subscription.secret)
    assert subscription.secret not in text(portal.get(portal_url("endpoint", subscription.pk)))


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"url": "https://169.254.169.254/latest"}, "which is not a public address"),
        ({"url": "http://hooks.example.com/x"}, "Only https:// URLs are allowed."),
        ({"url": "ftp://example.com/x"}, "Unsupported URL scheme"),
        ({"url": "not a url"}, "Enter a valid URL."),
        ({"event_types": []}, "This field is required."),
        ({"headers": "no colon here"}, "Line 1: write each header as"),
        ({"headers": "Content-Type: text/plain"}, "is set by the webhook sender"),
        ({"headers": "X-Token: café"}, "must be printable ASCII"),
    ],
)
def test_creating_an_endpoint_checks_input_like_the_api(portal, public_dns, fields, message):
    order_type()

    with webhooks(ALLOW_PRIVATE_NETWORKS=False, ALLOW_HTTP=False):
        response = portal.post(portal_url("endpoint-create"), create_data(**fields))

    assert response.status_code == 400
    assert message in text(response)
    assert not Subscription.objects.exists()


def test_the_portal_and_the_api_refuse_a_url_with_the_same_words(portal, django_user_model):
    admin = django_user_model.objects.create_superuser("root", password="pw")
    bad = "https://10.0.0.8/hook"

    with webhooks(ALLOW_PRIVATE_NETWORKS=False):
        api = link_client(admin).post(
            "/api/subscriptions/", {"url": bad, "event_types": ["*"]}, format="json"
        )
        page = portal.post(portal_url("endpoint-create"), create_data(url=bad, event_types=["*"]))

    assert api.status_code == 400 and page.status_code == 400
    assert api.json()["url"][0] in text(page).replace("&#x27;", "'")


def test_editing_an_endpoint(portal, public_dns):
    order_type()
    subscription = tenant_endpoint(
        TENANT, "https://hooks.example.com/a", event_types=["order.created"]
    )
    form = text(portal.get(portal_url("endpoint-edit", subscription.pk)))
    assert 'value="order.*"' in form

    response = portal.post(
        portal_url("endpoint-edit", subscription.pk),
        create_data(
            url="https://hooks.example.com/b",
            description="Renamed",
            event_types=["order.*", "*"],
            payload_format="cloudevents",
            headers="Authorization: Bearer t0ken\nX-Team: shop",
            max_in_flight="5",
        ),
    )

    assert response.status_code == 302
    subscription.refresh_from_db()
    assert subscription.url == "https://hooks.example.com/b"
    assert subscription.description == "Renamed"
    assert subscription.event_types == ["order.*", "*"]
    assert subscription.payload_format == "cloudevents"
    assert subscription.headers == {"Authorization": "Bearer t0ken", "X-Team": "shop"}
    assert subscription.max_in_flight == 5
    page = text(portal.get(response["Location"]))
    assert "Authorization: ••••" in page and "t0ken" not in page


def test_editing_keeps_a_filter_the_catalog_no_longer_lists(portal, public_dns):
    subscription = tenant_endpoint(TENANT, "https://hooks.example.com/a", event_types=["gone.type"])

    form = text(portal.get(portal_url("endpoint-edit", subscription.pk)))
    response = portal.post(
        portal_url("endpoint-edit", subscription.pk),
        create_data(url=subscription.url, event_types=["gone.type"]),
    )

    assert 'value="gone.type"' in form and "checked" in form
    assert response.status_code == 302


def test_disabling_says_what_waits_and_discards_it(portal, django_capture_on_commit_callbacks):
    subscription = tenant_endpoint(TENANT)
    waiting = [make_delivery(subscription, DeliveryStatus.RETRYING) for _ in range(2)]
    make_delivery(subscription, DeliveryStatus.SUCCEEDED)
    # Being sent right now: it finishes its attempt, so it is neither discarded nor counted.
    sending = make_delivery(subscription, DeliveryStatus.SENDING)

    confirm = text(portal.get(portal_url("endpoint-disable", subscription.pk)))
    with django_capture_on_commit_callbacks(execute=True):
        response = portal.post(portal_url("endpoint-disable", subscription.pk), follow=True)

    assert "2 deliveries are on their way or waiting for a retry" in confirm
    subscription.refresh_from_db()
    assert not subscription.is_active
    assert "2 deliveries that were waiting were discarded" in text(response)
    assert {d.status for d in Delivery.objects.filter(pk__in=[w.pk for w in waiting])} == {
        DeliveryStatus.DISCARDED
    }
    assert "This endpoint is disabled" in text(response)
    sending.refresh_from_db()
    assert sending.status == DeliveryStatus.SENDING


def test_enabling_offers_to_replay_what_was_missed(portal, django_capture_on_commit_callbacks):
    subscription = tenant_endpoint(
        TENANT, is_active=False, disabled_at=timezone.now() - dt.timedelta(minutes=30)
    )
    for minutes in (5, 10):
        make_delivery(
            subscription,
            DeliveryStatus.SKIPPED,
            created_at=timezone.now() - dt.timedelta(minutes=minutes),
        )

    response = portal.post(portal_url("endpoint-enable", subscription.pk))

    subscription.refresh_from_db()
    assert subscription.is_active
    assert response.status_code == 302
    assert response["Location"].startswith(portal_url("replay", subscription.pk) + "?since=")
    form = text(portal.get(response["Location"]))
    assert "It missed 2 events" in form
    assert re.search(r'value="skipped"[^>]*checked', form)


def test_enabling_without_missed_events_just_enables(portal):
    subscription = tenant_endpoint(TENANT, is_active=False, disabled_at=timezone.now())

    response = portal.post(portal_url("endpoint-enable", subscription.pk), follow=True)

    assert "Endpoint enabled." in text(response)


def test_deleting_asks_then_deletes_with_history(portal):
    subscription = tenant_endpoint(TENANT, description="Old")
    make_delivery(subscription, DeliveryStatus.SUCCEEDED)

    confirm = text(portal.get(portal_url("endpoint-delete", subscription.pk)))
    response = portal.post(portal_url("endpoint-delete", subscription.pk), follow=True)

    assert "Its history of 1 delivery stays in the delivery log" in confirm
    assert not Subscription.objects.filter(pk=subscription.pk).exists()
    assert Delivery.objects.filter(subscription_id=subscription.pk).count() == 1
    assert "Endpoint Old deleted." in text(response)


@pytest.mark.django_db(transaction=True)
def test_a_test_event_is_sent_to_that_endpoint_only(client, broker):
    open_portal(client, TENANT)
    subscription = tenant_endpoint(TENANT, event_types=["order.created"])
    tenant_endpoint(TENANT, description="Other")

    response = client.post(portal_url("endpoint-test", subscription.pk))

    delivery = Delivery.objects.get()
    assert delivery.subscription_id == subscription.pk
    assert delivery.event.type == "webhook.test"
    assert delivery.event.tenant_id == TENANT
    assert response["Location"] == portal_url("delivery", delivery.pk)


def test_a_disabled_endpoint_gets_no_test_event(portal):
    subscription = tenant_endpoint(TENANT, is_active=False)

    response = portal.post(portal_url("endpoint-test", subscription.pk), follow=True)

    assert "The subscription is disabled" in text(response)
    assert not Delivery.objects.exists()


def test_rotating_explains_the_overlap_then_shows_the_new_secret_once(portal):
    subscription = tenant_endpoint(TENANT)
    old = subscription.secret

    explained = text(portal.get(portal_url("endpoint-rotate", subscription.pk)))
    with webhooks(SECRET_ROTATION_OVERLAP=7200):
        explained_2h = text(portal.get(portal_url("endpoint-rotate", subscription.pk)))
    response = portal.post(portal_url("endpoint-rotate", subscription.pk))

    assert "For the next 1 day, every delivery is signed with both" in explained
    assert "For the next 2 hours" in explained_2h
    subscription.refresh_from_db()
    assert subscription.secret != old and subscription.previous_secret == old
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    page = text(response)
    assert subscription.secret in page and old not in page
    assert "The old one keeps signing beside it for 1 day" in page
    assert "the previous secret also signs until" in page
    assert_not_parked(portal, subscription.secret)
    assert subscription.secret not in text(portal.get(portal_url("endpoint", subscription.pk)))
    again = text(portal.get(portal_url("endpoint-rotate", subscription.pk)))
    assert "A rotation is already under way" in again


@pytest.mark.parametrize("failing_for", [None, dt.timedelta(minutes=5), dt.timedelta(hours=30)])
def test_replay_form_proposes_a_range_covering_the_outage(portal, broker, failing_for):
    now = timezone.now()
    failing_since = now - failing_for if failing_for else None
    subscription = tenant_endpoint(TENANT, failing_since=failing_since)
    start = (failing_since or now) - dt.timedelta(minutes=1)  # created before its attempt ended
    missed = make_delivery(subscription, DeliveryStatus.FAILED, created_at=start)
    make_delivery(subscription, DeliveryStatus.FAILED, created_at=now - dt.timedelta(days=3))
    make_delivery(subscription, DeliveryStatus.SUCCEEDED, created_at=now - dt.timedelta(minutes=3))

    form = text(portal.get(portal_url("replay", subscription.pk)))
    since = re.search(r'name="since" value="([^"]+)"', form).group(1)
    response = portal.post(
        portal_url("replay", subscription.pk), {"since": since, "status": ["failed"]}, follow=True
    )

    proposed = timezone.make_aware(dt.datetime.fromisoformat(since))
    expected = min(now - dt.timedelta(hours=24), start - dt.timedelta(minutes=59))
    assert expected - dt.timedelta(minutes=2) <= proposed <= expected
    assert proposed <= missed.created_at
    assert "1 delivery queued for replay." in text(response)
    assert response.redirect_chain[-1][0] == (
        portal_url("deliveries") + f"?endpoint={subscription.pk}"
    )


@pytest.mark.parametrize(
    "data, message",
    [
        ({}, "This field is required."),
        ({"since": "2026-01-02T10:00", "until": "2026-01-01T10:00"}, "Must be after"),
        ({"since": "yesterday"}, "Enter a valid date/time."),
        ({"since": "2026-01-01T10:00", "status": ["pending"]}, "Select a valid choice."),
    ],
)
def test_replay_refuses_bad_input(portal, data, message):
    subscription = tenant_endpoint(TENANT)

    response = portal.post(portal_url("replay", subscription.pk), data)

    assert response.status_code == 400
    assert message in text(response)


def test_replay_of_a_disabled_endpoint_says_enable_it_first(portal):
    subscription = tenant_endpoint(TENANT, is_active=False)

    response = portal.post(
        portal_url("replay", subscription.pk), {"since": "2026-01-01T10:00", "status": ["failed"]}
    )

    assert response.status_code == 400
    assert "enable it first" in text(response)


# --- Deliveries -----------------------------------------------------------------------------


def test_the_delivery_log_filters_by_endpoint_status_type_and_time(portal):
    now = timezone.now()
    shop = tenant_endpoint(TENANT, description="Shop")
    crm = tenant_endpoint(TENANT, description="CRM")
    a = make_delivery(shop, DeliveryStatus.FAILED, created_at=now - dt.timedelta(hours=5))
    b = make_delivery(shop, DeliveryStatus.SUCCEEDED, created_at=now - dt.timedelta(hours=1))
    c = make_delivery(crm, DeliveryStatus.FAILED, event_type="invoice.paid", created_at=now)

    def shown(**query) -> set[int]:
        response = portal.get(portal_url("deliveries"), query)
        assert response.status_code == 200, text(response)
        return {int(pk) for pk in re.findall(r'data-delivery="(\d+)"', text(response))}

    hour_ago = timezone.localtime(now - dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    assert shown() == {a.pk, b.pk, c.pk}
    assert shown(endpoint=shop.pk) == {a.pk, b.pk}
    assert shown(status="failed") == {a.pk, c.pk}
    assert shown(type="invoice.paid") == {c.pk}
    assert shown(since=hour_ago) == {b.pk, c.pk}
    assert shown(until=hour_ago) == {a.pk}
    assert shown(endpoint=shop.pk, status="failed") == {a.pk}


def test_the_delivery_log_refuses_bad_filters(portal):
    response = portal.get(portal_url("deliveries"), {"status": "lost", "since": "soon"})

    assert response.status_code == 400
    assert "Select a valid choice" in text(response)
    assert "Enter a valid date/time." in text(response)


def test_the_delivery_log_pages(portal):
    subscription = tenant_endpoint(TENANT)
    for _ in range(55):
        make_delivery(subscription, DeliveryStatus.SUCCEEDED)

    first = text(portal.get(portal_url("deliveries"), {"status": "succeeded"}))
    # Keyset pages: an "Older" link with a cursor that keeps the filter; no count, no numbers.
    older = html.unescape(re.search(r'href="\?([^"]*)" rel="next"', first).group(1))
    second = text(portal.get(portal_url("deliveries") + "?" + older))
    newer = html.unescape(re.search(r'href="\?([^"]*)" rel="prev"', second).group(1))
    back = text(portal.get(portal_url("deliveries") + "?" + newer))

    assert first.count("data-delivery=") == 50 and second.count("data-delivery=") == 5
    assert "status=succeeded" in older and "cursor=" in older
    assert 'rel="next"' not in second
    assert ids_shown(back) == ids_shown(first)
    assert not set(ids_shown(first)) & set(ids_shown(second))
    assert "55 deliveries" not in first and "Page 1 of" not in first


def ids_shown(page: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'data-delivery="(\d+)"', page)]


def test_a_delivery_shows_the_request_sent_and_every_attempt(portal):
    subscription = tenant_endpoint(
        TENANT, "http://127.0.0.1:9/crm", headers={"Authorization": "Bearer t0ken"}
    )
    delivery = make_delivery(
        subscription, DeliveryStatus.FAILED, attempts=[(500, 120), (None, 3000)], data={"id": 7}
    )

    page = text(portal.get(portal_url("delivery", delivery.pk)))

    request_sent = re.search(r'<pre tabindex="0" id="request-sent">(.*?)</pre>', page, re.S).group(
        1
    )
    assert request_sent.startswith("POST http://127.0.0.1:9/crm")
    assert f"webhook-id: {delivery.event_id}" in request_sent
    assert "authorization: [redacted]" in request_sent
    assert "&quot;data&quot;:{&quot;id&quot;:7}" in request_sent
    assert "t0ken" not in page
    started = [a.started_at for a in delivery.attempt_set.order_by("number")]
    for at in started:
        assert timezone.localtime(at).strftime("%Y-%m-%d %H:%M:%S") in page
    assert "HTTP 500" in page and "Connection failed" in page
    assert "3000 ms" in page and "120 ms" in page
    assert "nope" in page  # the response body


def test_an_unfinished_delivery_page_reloads_itself(portal):
    subscription = tenant_endpoint(TENANT)
    pending = make_delivery(subscription, DeliveryStatus.PENDING)
    done = make_delivery(subscription, DeliveryStatus.SUCCEEDED)

    assert 'data-refresh="2"' in text(portal.get(portal_url("delivery", pending.pk)))
    assert "data-refresh" not in text(portal.get(portal_url("delivery", done.pk)))


def replay_failed(portal, subscription):
    """Queue a replay of the endpoint's failed deliveries; returns the page it leads to."""
    since = timezone.localtime(timezone.now() - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    return portal.post(
        portal_url("replay", subscription.pk), {"since": since, "status": ["failed"]}, follow=True
    )


def test_the_log_reloads_until_a_queued_replay_reopened_its_deliveries(portal, broker):
    subscription = tenant_endpoint(TENANT)
    failed = make_delivery(subscription, DeliveryStatus.FAILED, attempts=[(500, 10)])

    # No worker yet: every row still shows finished, but the replay has not run.
    queued = text(replay_failed(portal, subscription))
    assert "1 delivery queued for replay." in queued
    assert "Replay queued: 1 delivery is about to be sent again." in queued
    assert 'data-refresh="2"' in queued
    other = tenant_endpoint(TENANT, url="https://other.example/hook")
    other_log = text(portal.get(portal_url("deliveries") + f"?endpoint={other.pk}"))
    assert "data-refresh" not in other_log  # another endpoint's log has nothing coming

    # The worker ran the replay: the row is on its way (refreshed in place: unfinished) ...
    assert (
        replay.run_replay(
            replay.build_request(subscription, timezone.now() - dt.timedelta(hours=1))
        )
        == 1
    )
    reopened = text(portal.get(portal_url("deliveries")))
    assert "Replay queued" not in reopened
    assert "data-refresh" not in reopened  # no reloading of the whole page ...
    assert f'data-delivery="{failed.pk}" data-unfinished' in reopened  # ... its row is polled
    # ... and once it succeeded, nothing is coming: nothing is polled.
    Delivery.objects.filter(pk=failed.pk).update(status=DeliveryStatus.SUCCEEDED)
    done = text(portal.get(portal_url("deliveries")))
    assert "data-refresh" not in done and "data-unfinished" not in done


def test_a_lost_replay_stops_the_reloading_after_a_while(portal, broker, monkeypatch):
    subscription = tenant_endpoint(TENANT)
    make_delivery(subscription, DeliveryStatus.FAILED, attempts=[(500, 10)])
    assert 'data-refresh="2"' in text(replay_failed(portal, subscription))

    monkeypatch.setattr(replays, "WATCH_SECONDS", 0)  # its task never ran

    assert "data-refresh" not in text(portal.get(portal_url("deliveries")))
    assert replays.SESSION_KEY not in portal.session or not portal.session[replays.SESSION_KEY]


def test_retrying_a_delivery_queues_one_more_attempt(portal, broker):
    subscription = tenant_endpoint(TENANT)
    delivery = make_delivery(subscription, DeliveryStatus.FAILED, attempts=[(500, 10)])

    response = portal.post(portal_url("delivery-retry", delivery.pk), follow=True)

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.RETRYING
    assert "Attempt 2 queued: sending again now." in text(response)


def test_retrying_a_delivery_of_a_disabled_endpoint_says_why_not(portal):
    subscription = tenant_endpoint(TENANT, is_active=False)
    delivery = make_delivery(subscription, DeliveryStatus.DISCARDED)

    response = portal.post(portal_url("delivery-retry", delivery.pk), follow=True)

    assert "enable it first" in text(response)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DISCARDED


# --- Catalog and signatures -----------------------------------------------------------------


def test_the_catalog_shows_schema_and_an_example_from_it(portal):
    order_type()

    page = text(portal.get(portal_url("catalog")))

    assert "A customer placed an order." in page
    assert "&quot;minimum&quot;: 1" in page  # the schema
    assert "Made from the schema." in page
    assert "&quot;total&quot;: &quot;42.00&quot;" in page  # from the schema's examples
    assert "&quot;placed_at&quot;: &quot;2026-01-31T12:00:00Z&quot;" in page


def test_the_catalog_prefers_the_tenants_latest_event(portal):
    order_type()
    mine = tenant_endpoint(TENANT)
    theirs = tenant_endpoint("globex")
    make_delivery(mine, DeliveryStatus.SUCCEEDED, data={"id": 11, "total": "1.00"})
    make_delivery(theirs, DeliveryStatus.SUCCEEDED, data={"id": 99, "total": "999.00"})

    page = text(portal.get(portal_url("catalog")))

    assert "Your latest event of this type" in page
    assert "&quot;id&quot;: 11" in page
    assert "999.00" not in page


def test_signature_help_uses_a_real_delivery_of_the_tenant(portal):
    subscription = tenant_endpoint(TENANT, description="Shop")
    delivery = make_delivery(subscription, DeliveryStatus.SUCCEEDED, attempts=[(200, 5)])
    attempt = delivery.attempt_set.get()
    attempt.request_headers = {
        **attempt.request_headers,
        "webhook-timestamp": "1700000000",
        "webhook-signature": "v1,abc=",
    }
    attempt.save()

    page = text(portal.get(portal_url("verify")))

    assert "The latest delivery to <strong>Shop</strong>" in page
    assert f"webhook-id: {delivery.event_id}" in page
    assert "webhook-signature: v1,abc=" in page
    assert "now=1700000000" in page
    assert subscription.secret not in page


def test_signature_help_without_deliveries_signs_an_example_that_verifies(portal):
    page = text(portal.get(portal_url("verify")))

    secret = re.search(r'<code id="demo-secret">(whsec_[^<]+)</code>', page).group(1)
    headers_block = re.search(r'id="example-headers">(.*?)</pre>', page, re.S).group(1)
    headers = dict(line.split(": ", 1) for line in headers_block.strip().splitlines())
    body = re.search(r'id="example-body">(.*?)</pre>', page, re.S).group(1)
    body = body.replace("&quot;", '"')

    assert verify(secret, body, headers)["data"]["id"] == 1001
    code = re.search(r'id="example-code">(.*?)</pre>', page, re.S).group(1)
    code = code.replace("&#x27;", "'").replace("&quot;", '"')
    compile(code, "example", "exec")


# --- CSRF and security headers --------------------------------------------------------------


def post_urls(subscription, delivery) -> list[str]:
    return [
        portal_url("endpoint-create"),
        portal_url("endpoint-edit", subscription.pk),
        portal_url("endpoint-disable", subscription.pk),
        portal_url("endpoint-enable", subscription.pk),
        portal_url("endpoint-delete", subscription.pk),
        portal_url("endpoint-test", subscription.pk),
        portal_url("endpoint-rotate", subscription.pk),
        portal_url("replay", subscription.pk),
        portal_url("delivery-retry", delivery.pk),
        portal_url("leave"),
    ]


def test_every_form_needs_the_csrf_token():
    checked = Client(enforce_csrf_checks=True)
    open_portal(checked, TENANT)
    subscription = tenant_endpoint(TENANT)
    delivery = make_delivery(subscription, DeliveryStatus.FAILED)
    secret = subscription.secret

    for url in post_urls(subscription, delivery):
        assert checked.post(url, {}).status_code == 403, url

    subscription.refresh_from_db()
    assert subscription.is_active and subscription.secret == secret
    # ...and with the token from a page, a form works.
    page = text(checked.get(portal_url("endpoint-disable", subscription.pk)))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = checked.post(
        portal_url("endpoint-disable", subscription.pk), {"csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302


@override_settings(
    MIDDLEWARE=[m for m in __import__("django.conf").conf.settings.MIDDLEWARE if "Csrf" not in m]
)
def test_csrf_is_checked_even_without_the_middleware():
    checked = Client(enforce_csrf_checks=True)
    open_portal(checked, TENANT)
    subscription = tenant_endpoint(TENANT)

    response = checked.post(portal_url("endpoint-disable", subscription.pk))

    assert response.status_code == 403
    subscription.refresh_from_db()
    assert subscription.is_active


def test_portal_pages_send_a_content_security_policy(portal):
    response = portal.get(portal_url("endpoints"))

    policy = response["Content-Security-Policy"]
    assert "frame-ancestors 'self'" in policy
    assert "script-src 'self' 'nonce-" in policy
    assert "default-src 'self'" in policy
    assert response["X-Frame-Options"] == "DENY"
    assert response["Cache-Control"] == "no-store, private"
    assert response["Referrer-Policy"] == "same-origin"
    refused = Client().get(access.entry_path("garbage"))
    assert "frame-ancestors" in refused["Content-Security-Policy"]


def test_frame_ancestors_are_configurable_for_embedding(portal):
    with webhooks(PORTAL_FRAME_ANCESTORS=["'self'", "https://app.example.com"]):
        response = portal.get(portal_url("endpoints"))

    assert "frame-ancestors 'self' https://app.example.com" in response["Content-Security-Policy"]
    assert "X-Frame-Options" not in response


def test_every_inline_script_and_style_carries_the_nonce(portal):
    tenant_endpoint(TENANT)
    response = portal.get(portal_url("endpoints"))
    page = text(response)

    assert not re.search(r"<script(?![^>]*\bsrc=)", page)
    assert not re.search(r"<style(?![^>]*nonce=)", page)
    assert not re.search(r'\sstyle="', page)  # inline style attributes are blocked by the CSP


# --- Looking like the host's product ---------------------------------------------------------


def test_the_look_is_overridden_by_a_template_alone(portal, tmp_path):
    from django.conf import settings

    folder = tmp_path / "webhooks_portal"
    folder.mkdir()
    (folder / "base_site.html").write_text(
        '{% extends "webhooks_portal/base.html" %}'
        "{% block site_title %}Acme Cloud{% endblock %}"
        "{% block product_name %}Acme Cloud{% endblock %}"
        '{% block logo %}<img src="/static/acme/logo.svg" alt="" class="acme-logo">{% endblock %}'
        '{% block theme %}<style nonce="{{ portal_nonce }}">:root{--portal-accent:#6d28d9}'
        "</style>{% endblock %}"
    )
    templates = [{**settings.TEMPLATES[0], "DIRS": [str(tmp_path)]}]

    with override_settings(TEMPLATES=templates):
        response = portal.get(portal_url("endpoints"))

    page = text(response)
    nonce = re.search(r"'nonce-([^']+)'", response["Content-Security-Policy"]).group(1)
    assert f'<style nonce="{nonce}">:root{{--portal-accent:#6d28d9}}</style>' in page
    assert 'class="acme-logo"' in page
    assert "<title>Endpoints · Acme Cloud</title>" in page


def test_the_tenants_subscription_limit_holds_in_the_portal(portal, public_dns):
    Tenant.objects.filter(pk=TENANT).update(max_subscriptions=1)
    tenant_endpoint(TENANT)

    response = portal.post(portal_url("endpoint-create"), create_data(event_types=["*"]))

    assert response.status_code == 400
    assert "has reached its limit of 1 subscriptions" in text(response)
    assert Subscription.objects.filter(tenant_id=TENANT).count() == 1


def test_portal_actions_spend_the_tenants_api_budget(portal, broker):
    subscription = tenant_endpoint(TENANT)
    api = link_client(make_tenant_user("ann", TENANT))

    with webhooks(THROTTLE_RATES={"test": "2/minute"}):
        first = portal.post(portal_url("endpoint-test", subscription.pk))
        second = api.post(f"/api/subscriptions/{subscription.pk}/test/")
        third = portal.post(portal_url("endpoint-test", subscription.pk))
        other_tenant = link_client(make_tenant_user("gus", "globex"))
        theirs = tenant_endpoint("globex")
        elsewhere = other_tenant.post(f"/api/subscriptions/{theirs.pk}/test/")

    assert first.status_code == 302 and second.status_code == 202
    assert third.status_code == 429
    assert int(third["Retry-After"]) > 0
    assert "Too many requests" in text(third)
    assert elsewhere.status_code == 202  # another tenant's budget is its own


@pytest.mark.parametrize(
    "scope, route, kind",
    [
        ("create", "endpoint-create", None),
        ("replay", "replay", "subscription"),
        ("retry", "delivery-retry", "delivery"),
    ],
)
def test_every_costly_portal_action_is_throttled(portal, public_dns, broker, scope, route, kind):
    order_type()
    subscription = tenant_endpoint(TENANT)
    delivery = make_delivery(subscription, DeliveryStatus.FAILED)
    target = {"subscription": subscription, "delivery": delivery}.get(kind)
    url = portal_url(route, target.pk) if target else portal_url(route)
    accepted = {
        "create": create_data(),
        "replay": {"since": "2026-01-01T10:00", "status": ["failed"]},
        "retry": {},
    }[scope]

    with webhooks(THROTTLE_RATES={scope: "1/hour"}):
        if scope != "retry":  # an invalid form did nothing and spends nothing
            assert portal.post(url, {"since": "yesterday", "url": "x"}).status_code == 400
        first = portal.post(url, accepted)
        response = portal.post(url, accepted)

    assert first.status_code in (200, 302)
    assert response.status_code == 429
