"""A blocked ordering key in the portal and the admin: the head that holds it, why and since
when, "Retry now" and "Skip"; a tenant reaches only its own. Browser screenshots:
artifacts/portal-blocked-keys.png, artifacts/admin-blocked-keys.png."""

from __future__ import annotations

import pytest
from django.urls import reverse

from deliveries.models import Delivery, DeliveryStatus
from deliveries.services import publish
from deliveries.services.attempts import attempt_delivery
from tests.browser import ARTIFACTS, needs_chromium
from tests.factories import make_user
from tests.portal_helpers import open_portal, portal_url, tenant_endpoint
from tests.receiver import Reply
from webhooks_portal.access import make_token

TENANT = "acme"


def blocked_endpoint(receiver, tenant: str = TENANT, n: int = 3):
    """An endpoint of `tenant` whose receiver answers 500: the first event of key "order_1001"
    fails and holds the key; `n - 1` wait behind it. Returns (endpoint, head, the others)."""
    receiver.script(f"/{tenant}", Reply(500))
    endpoint = tenant_endpoint(tenant, receiver.url(f"/{tenant}"), description="Orders")
    events = [
        publish("order.created", {"n": i}, tenant=tenant, ordering_key="order_1001")
        for i in range(n)
    ]
    deliveries = [Delivery.objects.get(event=e) for e in events]
    attempt_delivery(deliveries[0].pk, 1)
    return endpoint, deliveries[0], deliveries[1:]


@pytest.mark.django_db(transaction=True)
def test_the_portal_shows_the_head_and_skips_it(client, receiver, broker):
    endpoint, head, behind = blocked_endpoint(receiver)
    open_portal(client, TENANT)
    page = client.get(portal_url("endpoint", endpoint.pk)).content.decode()
    assert 'id="blocked-keys"' in page and "order_1001" in page
    assert portal_url("delivery", head.pk) in page  # which delivery holds the key
    assert "HTTP 500" in page  # why
    detail = client.get(portal_url("delivery", behind[0].pk)).content.decode()
    assert 'id="waiting-for"' in detail and "earlier delivery of its key" in detail

    response = client.post(portal_url("delivery-skip", head.pk))
    assert response.status_code == 302
    head.refresh_from_db()
    assert head.status == DeliveryStatus.DISCARDED and "Skipped by the portal" in head.last_error
    behind[0].refresh_from_db()
    assert behind[0].next_attempt_at is not None and behind[0].waiting_for == ""


@pytest.mark.django_db(transaction=True)
def test_another_tenants_head_is_a_404_and_untouched(client, receiver, broker):
    _, head, _ = blocked_endpoint(receiver, tenant="other")
    tenant_endpoint(TENANT)
    open_portal(client, TENANT)
    assert client.post(portal_url("delivery-skip", head.pk)).status_code == 404
    head.refresh_from_db()
    assert head.status == DeliveryStatus.RETRYING


@pytest.mark.django_db(transaction=True)
def test_the_admin_panel_shows_blocked_keys_and_skip_needs_the_permission(client, receiver, broker):
    endpoint, head, behind = blocked_endpoint(receiver, n=2)
    viewer = make_user("viewer", "view_subscription", "view_delivery", is_staff=True)
    client.force_login(viewer)
    change = reverse("admin:webhook_subscriptions_subscription_change", args=[endpoint.pk])
    page = client.get(change).content.decode()
    assert 'id="blocked-keys"' in page and "order_1001" in page
    assert "blocked-skip" not in page  # no change permission: nothing to act with
    skip = reverse("admin:deliveries_delivery_skip", args=[head.pk])
    assert client.post(skip).status_code == 403

    operator = make_user(
        "operator", "view_subscription", "view_delivery", "change_delivery", is_staff=True
    )
    client.force_login(operator)
    page = client.get(change).content.decode()
    assert "blocked-skip" in page and "blocked-retry" in page
    assert client.post(skip).status_code == 302
    head.refresh_from_db()
    assert head.status == DeliveryStatus.DISCARDED and "Skipped by operator" in head.last_error
    assert Delivery.objects.get(pk=behind[0].pk).next_attempt_at is not None
    # Nothing blocked any more (the next one is due and not held): no panel.
    assert 'id="blocked-keys"' not in client.get(change).content.decode()


@pytest.mark.browser
@needs_chromium
def test_blocked_keys_in_a_browser(browser, live_server, receiver, broker, django_user_model):
    from playwright.sync_api import expect

    endpoint, _, behind = blocked_endpoint(receiver, n=4)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/portal/access/?token={make_token(TENANT)}")
    page.goto(f"{live_server.url}{portal_url('endpoint', endpoint.pk)}")
    section = page.locator("#blocked-keys")
    expect(section).to_contain_text("order_1001")
    section.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "portal-blocked-keys.png"), full_page=True)
    section.locator("button.blocked-skip").click()
    expect(page.locator("#delivery-status")).to_have_text("Discarded")
    page.screenshot(path=str(ARTIFACTS / "portal-blocked-key-skipped.png"), full_page=True)
    assert Delivery.objects.get(pk=behind[0].pk).next_attempt_at is not None

    django_user_model.objects.create_superuser("root", password="pw-for-tests-only")
    admin = browser.new_page(viewport={"width": 1280, "height": 900})
    admin.goto(f"{live_server.url}/admin/login/")
    admin.fill("#id_username", "root")
    admin.fill("#id_password", "pw-for-tests-only")
    admin.click("input[type=submit]")
    change = reverse("admin:webhook_subscriptions_subscription_change", args=[endpoint.pk])
    admin.goto(f"{live_server.url}{change}")
    panel = admin.locator("#blocked-keys")
    expect(panel).to_contain_text("order_1001")  # the next one holds the key now
    panel.scroll_into_view_if_needed()
    admin.screenshot(path=str(ARTIFACTS / "admin-blocked-keys.png"), full_page=True)
    # The panel sits inside the subscription's form: its Skip posts to the skip view, and
    # saves nothing of the subscription.
    panel.locator("button.blocked-skip").click()
    expect(admin.locator(".messagelist")).to_contain_text("Skipped")
    assert Delivery.objects.get(pk=behind[0].pk).status == DeliveryStatus.DISCARDED
    assert Delivery.objects.get(pk=behind[1].pk).next_attempt_at is not None


@pytest.mark.django_db(transaction=True)
def test_the_api_skips_a_head_for_its_own_tenant_only(receiver, broker):
    from tests.factories import api_client, make_tenant_user

    _, head, behind = blocked_endpoint(receiver, n=2)
    _, foreign_head, _ = blocked_endpoint(receiver, tenant="other", n=2)
    client = api_client(make_tenant_user("acme-user", TENANT))
    assert client.post(f"/api/deliveries/{foreign_head.pk}/skip/").status_code == 404
    answer = client.post(f"/api/deliveries/{head.pk}/skip/")
    assert answer.status_code == 200 and answer.json() == {"id": head.pk, "released": 1}
    assert client.post(f"/api/deliveries/{head.pk}/skip/").status_code == 409  # ended
    behind[0].refresh_from_db()
    assert behind[0].next_attempt_at is not None
    foreign_head.refresh_from_db()
    assert foreign_head.status == DeliveryStatus.RETRYING
