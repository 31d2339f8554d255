"""The customer portal in a real headless Chromium, against a live server, a real Celery worker
and a real receiver: what a tenant does from the link its provider gave it.

Opens the portal from a link made by `POST /api/tenants/{key}/portal-link/`, adds an endpoint
(the secret shown once and copied with the copy button), sends a test event and watches it
arrive, breaks the receiver (500), sees the failure with every attempt, fixes the receiver,
replays, sees the event arrive; then walks every other page. Each page is saved as
artifacts/portal-*.png and checked with axe-core (no serious or critical violation); the same
pages are then seen on a phone-sized screen (artifacts/portal-phone-*.png) with no sideways
scrolling.
"""

from __future__ import annotations

import re

import pytest
import requests
from django.contrib.auth.models import Permission

from deliveries.models import Delivery
from deliveries.services import publish
from subscriptions.models import Subscription
from tests.browser import ARTIFACTS, needs_chromium
from tests.portal_helpers import order_type
from tests.receiver import Reply
from webhooks_receiver import verify

pytestmark = [pytest.mark.browser, needs_chromium]

TENANT = "acme"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
BLOCKING_IMPACTS = {"serious", "critical"}


class Pages:
    """Screenshots and the accessibility check of every page visited."""

    def __init__(self) -> None:
        from axe_playwright_python.sync_playwright import Axe

        self.axe = Axe()
        self.shots: list[str] = []
        self.urls: dict[str, str] = {}
        self.violations: list[str] = []

    def check(self, page, name: str) -> None:
        page.wait_for_load_state("load")
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"portal-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        self.shots.append(path.name)
        self.urls.setdefault(name, page.url)
        results = self.axe.run(page)
        for violation in results.response["violations"]:
            if violation.get("impact") in BLOCKING_IMPACTS:
                targets = [n["target"] for n in violation["nodes"]][:3]
                self.violations.append(
                    f"{name}: {violation['id']} ({violation['impact']}): {violation['help']} "
                    f"at {targets}"
                )


def link_for(live_server, django_user_model, tenant: str) -> str:
    """What the host's backend does: ask the API for a portal link."""
    backend = django_user_model.objects.create_user("backend", password="pw")
    backend.user_permissions.add(Permission.objects.get(codename="change_subscription"))
    response = requests.post(
        f"{live_server.url}/api/tenants/{tenant}/portal-link/", auth=("backend", "pw"), timeout=10
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"url", "expires_at"}
    return body["url"]


def expect_status(page, text: str, timeout: float = 30_000) -> None:
    from playwright.sync_api import expect

    expect(page.locator("#delivery-status")).to_have_text(text, timeout=timeout)


def test_tenant_walkthrough(browser, live_server, worker, receiver, django_user_model):
    from playwright.sync_api import expect

    order_type()
    pages = Pages()
    context = browser.new_context(viewport=DESKTOP)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page = context.new_page()
    page.set_default_timeout(20_000)

    # 1. The tenant opens the portal from the link its provider made.
    page.goto(link_for(live_server, django_user_model, TENANT))
    assert page.url.endswith("/portal/endpoints/")  # the token left the address bar
    expect(page.locator("h1")).to_have_text("Endpoints")
    pages.check(page, "endpoints-empty")

    # 2. Adds an endpoint; a URL the API refuses is refused here with the API's words.
    page.click("text=Add endpoint")
    page.fill("#id_url", "ftp://example.com/hook")
    page.check('input[name="event_types"][value="order.created"]')
    page.click('button:has-text("Add endpoint")')
    expect(page.locator(".errorlist").first).to_contain_text("Unsupported URL scheme")
    pages.check(page, "endpoint-create-error")
    page.fill("#id_url", receiver.url("/acme"))
    page.fill("#id_description", "Order sync")
    page.click('button:has-text("Add endpoint")')
    expect(page.locator("#secret-heading")).to_be_visible()
    secret = page.inner_text("#secret-value").strip()
    assert secret.startswith("whsec_")
    page.click('button[data-copy="#secret-value"]')
    expect(page.locator('button[data-copy="#secret-value"]')).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    pages.check(page, "endpoint-created")
    endpoint = Subscription.objects.get(url=receiver.url("/acme"))
    # The secret came in the answer to the POST; the address bar shows the endpoint's page, so
    # a reload reads it (without the secret) instead of sending the form again.
    endpoint_url = page.url
    assert endpoint_url.endswith(f"/portal/endpoints/{endpoint.pk}/")
    page.reload()
    expect(page.locator("#secret-heading")).to_have_count(0)

    # 3. Sends a test event and watches it arrive.
    page.click("#send-test")
    expect_status(page, "Succeeded")
    assert receiver.wait_for(1, "/acme")
    first = receiver.requests_to("/acme")[0]
    assert verify(secret, first.body, first.headers)["type"] == "webhook.test"
    expect(page.locator("#attempts tbody tr")).to_have_count(1)
    expect(page.locator("#attempts")).to_contain_text("HTTP 200")
    pages.check(page, "delivery-succeeded")

    # 4. The receiver breaks: the next order fails, attempt after attempt.
    receiver.script("/acme", Reply(status=500, body=b"database is down"))
    event = publish("order.created", {"id": 1001, "total": "42.00"}, tenant=TENANT)
    page.goto(f"{live_server.url}/portal/deliveries/")
    failed_row = page.locator('tr[data-delivery]:has(code:text("order.created"))')
    expect(failed_row.locator(".badge")).to_have_text("Failed", timeout=30_000)
    pages.check(page, "deliveries-failed")
    failed_row.locator("a", has_text="Details").click()
    expect_status(page, "Failed")
    attempts = page.locator("#attempts tbody tr")
    assert attempts.count() == 5
    expect(page.locator("#attempts")).to_contain_text("HTTP 500")
    # Times to the second, so attempts a fraction of a second apart read apart.
    assert re.search(r"\d{2}:\d{2}:\d{2}", attempts.first.inner_text())
    page.locator("#attempts details summary").first.click()
    expect(page.locator("#attempts details pre").first).to_have_text("database is down")
    request_text = page.inner_text("#request-sent")
    assert request_text.startswith(f"POST {receiver.url('/acme')}")
    assert f"webhook-id: {event.id}" in request_text
    assert '"data":{"id":1001,"total":"42.00"}' in request_text
    pages.check(page, "delivery-failed")
    page.goto(endpoint_url)
    expect(page.locator("#failures-in-a-row")).not_to_have_text("0")
    # The incident's notice: when the endpoint will be disabled, and the replay of what it missed.
    expect(page.locator("#endpoint-notice")).to_contain_text("this endpoint will be disabled")
    expect(page.locator("#endpoint-notices")).to_contain_text("Failing")
    pages.check(page, "endpoint-failing")

    # 5. Fixed: replay the failures since the outage began; the order arrives.
    receiver.script("/acme", Reply(status=200))
    before = receiver.counts["/acme"]
    page.click("text=Replay failed deliveries")
    expect(page.locator("#replay-form")).to_be_visible()
    assert page.input_value("#id_since")
    pages.check(page, "replay")
    page.click('button[name="replay"]')
    expect(page.locator(".messages")).to_contain_text("1 delivery queued for replay.")
    expect(failed_row.locator(".badge")).to_have_text("Succeeded", timeout=30_000)
    assert receiver.wait_for(before + 1, "/acme")
    arrived = receiver.requests_to("/acme")[-1]
    assert verify(secret, arrived.body, arrived.headers)["data"] == {"id": 1001, "total": "42.00"}
    assert arrived.headers["webhook-id"] == str(event.id)
    pages.check(page, "deliveries-replayed")

    # 6. Every other page: list with health, edit, catalog, filters, signatures, rotation,
    # disable (what waits) and enable, delete, and the refused links.
    page.goto(f"{live_server.url}/portal/endpoints/")
    expect(page.locator("#endpoints tbody tr")).to_have_count(1)
    assert page.locator("#endpoints svg.webhooks-days").count() == 1
    pages.check(page, "endpoints")

    page.goto(endpoint_url)
    page.click("text=Edit")
    page.check('input[name="event_types"][value="order.*"]')
    page.fill("#id_headers", "Authorization: Bearer s3cret")
    pages.check(page, "endpoint-edit")
    page.click('button:has-text("Save")')
    expect(page.locator(".messages")).to_contain_text("Endpoint saved.")
    endpoint.refresh_from_db()
    assert endpoint.headers == {"Authorization": "Bearer s3cret"}
    assert "s3cret" not in page.content()  # header values are masked on the page

    page.goto(f"{live_server.url}/portal/event-types/")
    expect(page.locator("#type-ordercreated")).to_contain_text('"total": "42.00"')
    pages.check(page, "catalog")

    page.goto(f"{live_server.url}/portal/deliveries/")
    page.check("input[name=status][value=succeeded]")  # one or several: checkboxes
    page.fill("#id_type", "webhook.test")
    page.click('button:has-text("Filter")')
    expect(page.locator("tr[data-delivery]")).to_have_count(1)
    pages.check(page, "deliveries-filtered")

    page.goto(f"{live_server.url}/portal/verify/")
    expect(page.locator("#example-headers")).to_contain_text("webhook-signature: v1,")
    pages.check(page, "verify")

    page.goto(endpoint_url)
    page.click("text=Rotate secret")
    expect(page.locator("#overlap")).to_contain_text("1 day")
    pages.check(page, "rotate")
    page.click('button:has-text("Create a new secret")')
    new_secret = page.inner_text("#secret-value").strip()
    assert new_secret.startswith("whsec_") and new_secret != secret
    pages.check(page, "rotated")

    page.click("text=Disable")
    expect(page.locator("#waiting-count")).to_contain_text("0 deliveries")
    pages.check(page, "disable")
    page.click('button:has-text("Disable endpoint")')
    expect(page.locator("#disabled-heading")).to_be_visible()
    pages.check(page, "endpoint-disabled")
    publish("order.created", {"id": 1002, "total": "7.00"}, tenant=TENANT)  # missed while disabled
    page.click('button:has-text("Enable endpoint")')
    expect(page.locator(".messages")).to_contain_text("missed 1 event")
    expect(page.locator("#replay-form")).to_be_visible()
    assert page.is_checked('input[name="status"][value="skipped"]')
    page.click('button[name="replay"]')
    expect(page.locator(".messages")).to_contain_text("1 delivery queued for replay.")
    assert receiver.wait_for(before + 2, "/acme")

    page.goto(endpoint_url)
    page.click("a:has-text('Delete')")
    pages.check(page, "delete")

    phone = browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    phone.add_cookies(context.cookies())
    small = phone.new_page()
    for name, url in list(pages.urls.items()):
        if name in {"endpoint-create-error", "delete"}:
            continue
        small.goto(url)
        overflow = small.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{name} scrolls sideways by {overflow}px on a phone"
        pages.check(small, f"phone-{name}")
    phone.close()

    page.click('button:has-text("Delete endpoint")')
    expect(page.locator(".messages")).to_contain_text("deleted")
    assert not Subscription.objects.filter(pk=endpoint.pk).exists()
    # Soft delete: the endpoint is hidden and its history stays (docs/api.md, "Delete").
    assert Subscription.all_objects.get(pk=endpoint.pk).deleted_at is not None
    assert Delivery.objects.filter(subscription_id=endpoint.pk).exists()

    page.goto(f"{live_server.url}/portal/access/?token=not-a-real-token")
    expect(page.locator("h1")).to_have_text("This portal link is not valid")
    pages.check(page, "link-invalid")
    page.goto(f"{live_server.url}/portal/endpoints/")
    page.click('button:has-text("Leave")')
    expect(page.locator("h1")).to_have_text("You have left the portal")
    pages.check(page, "left")
    anonymous = browser.new_context(viewport=DESKTOP).new_page()
    anonymous.goto(f"{live_server.url}/portal/endpoints/")
    expect(anonymous.locator("h1")).to_have_text("This page needs a portal link")
    pages.check(anonymous, "no-access")
    context.close()

    assert pages.violations == [], "\n".join(pages.violations)
