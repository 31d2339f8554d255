"""An endpoint's rate and what it holds back, in a real headless Chromium: the admin's
subscription page (the waits panel), the portal's endpoint page (most per second, held back now,
waits of the last hour) and the portal's edit form (most events per second, a bad value refused
with its field's error). Screenshots: artifacts/admin-subscription-waits.png,
artifacts/portal-endpoint-rate.png, artifacts/portal-endpoint-rate-refused.png."""

from __future__ import annotations

import pytest
from django.utils import timezone

from deliveries.models import DeliveryAttempt
from subscriptions.models import Subscription, Tenant
from tests.browser import ARTIFACTS, chromium, login, needs_chromium
from tests.ops_helpers import make_delivery
from tests.portal_helpers import tenant_endpoint
from tests.test_browser_portal import DESKTOP, Pages
from webhooks_portal import access

pytestmark = [pytest.mark.browser, needs_chromium]


def seed() -> Subscription:
    Tenant.objects.create(key="acme", name="Acme Inc.")
    sub = tenant_endpoint("acme", description="Acme orders", max_rate=2)
    for wait_ms in (0, 0, 1200, 4000, 15000):
        sent = make_delivery(sub, "succeeded", attempts=[(200, 40)])
        DeliveryAttempt.objects.filter(delivery=sent).update(
            throttled_ms=wait_ms, started_at=timezone.now()
        )
    for _ in range(3):
        make_delivery(
            sub, "pending", next_attempt_at=timezone.now(), wait_reason="rate", wait_attempt=1
        )
    return sub


def test_the_rate_and_its_waits_in_the_admin_and_the_portal(
    live_server, staff_user, broker, monkeypatch
):
    from playwright.sync_api import expect

    sub = seed()
    base = live_server.url
    pages = Pages()
    with chromium(monkeypatch) as browser:
        admin = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
        login(admin, base)
        admin.goto(f"{base}/admin/webhook_subscriptions/subscription/{sub.pk}/change/")
        expect(admin.locator("#waits-on-rate")).to_have_text("3")
        expect(admin.locator("#waits-waited")).to_have_text("3 / 5")
        expect(admin.locator("#waits-p50")).to_have_text("4.0 s")
        expect(admin.locator("#waits-max")).to_have_text("15.0 s")
        ARTIFACTS.mkdir(exist_ok=True)
        admin.screenshot(path=str(ARTIFACTS / "admin-subscription-waits.png"), full_page=True)

        portal = browser.new_context(viewport=DESKTOP).new_page()
        portal.goto(base + access.entry_path(access.make_token("acme")))
        portal.goto(f"{base}/portal/endpoints/{sub.pk}/")
        expect(portal.locator("#max-rate")).to_have_text("2.0")
        expect(portal.locator("#waits-now")).to_contain_text("3 waiting on the rate")
        expect(portal.locator("#waits-hour")).to_contain_text(
            "3 of 5 attempts waited: median 4.0 s, longest 15.0 s"
        )
        pages.check(portal, "endpoint-rate")

        portal.goto(f"{base}/portal/endpoints/{sub.pk}/edit/")
        portal.fill("input[name=max_rate]", "0")
        portal.get_by_role("button", name="Save").click()
        expect(portal.locator("main")).to_contain_text("0.01")
        pages.check(portal, "endpoint-rate-refused")
        assert Subscription.objects.get(pk=sub.pk).max_rate == 2
        portal.fill("input[name=max_rate]", "0.5")
        portal.get_by_role("button", name="Save").click()
        expect(portal.locator("#max-rate")).to_have_text("0.5")
    assert Subscription.objects.get(pk=sub.pk).max_rate == 0.5
    assert not pages.violations, pages.violations
