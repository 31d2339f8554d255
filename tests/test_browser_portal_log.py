"""The portal's delivery log in a real headless Chromium: an unfinished row is refreshed in place
(no page reload), an unchanged poll is a 304, and nothing is polled while the tab is hidden.
Screenshot: artifacts/portal-log-live.png."""

from __future__ import annotations

import time

import pytest

from deliveries.models import Delivery, DeliveryStatus
from tests.browser import ARTIFACTS, needs_chromium
from tests.ops_helpers import make_delivery
from tests.portal_helpers import tenant_endpoint
from webhooks_portal.access import make_token

pytestmark = [pytest.mark.browser, needs_chromium]

TENANT = "acme"


def set_hidden(page, hidden: bool) -> None:
    """What the browser does when the tab goes to the background (or comes back)."""
    page.evaluate(
        """hidden => {
            Object.defineProperty(document, "hidden", {value: hidden, configurable: true});
            document.dispatchEvent(new Event("visibilitychange"));
        }""",
        hidden,
    )


def test_the_log_refreshes_unfinished_rows_in_place(browser, live_server):
    from playwright.sync_api import expect

    endpoint = tenant_endpoint(TENANT, description="Shop")
    make_delivery(endpoint, DeliveryStatus.SUCCEEDED, attempts=[(200, 30)])
    waiting = make_delivery(endpoint, DeliveryStatus.PENDING)
    polls: list[int] = []
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.on(
        "response",
        lambda r: polls.append(r.status) if "/portal/deliveries/rows/" in r.url else None,
    )
    page.goto(f"{live_server.url}/portal/access/?token={make_token(TENANT)}")
    page.goto(f"{live_server.url}/portal/deliveries/")
    row = page.locator(f'tr[data-delivery="{waiting.pk}"]')
    expect(row.locator(".badge")).to_have_text("Pending")
    page.evaluate("window.notReloaded = true")

    # First poll answers the rows (200), the next one, unchanged, a bodiless 304.
    deadline = time.monotonic() + 60
    while 304 not in polls and time.monotonic() < deadline:
        page.wait_for_timeout(500)
    assert polls[:2] == [200, 304], polls

    # The delivery succeeds: its row changes in place, the page is not reloaded.
    Delivery.objects.filter(pk=waiting.pk).update(
        status=DeliveryStatus.SUCCEEDED, attempts=1, last_status_code=200
    )
    expect(row.locator(".badge")).to_have_text("Succeeded", timeout=60_000)
    assert page.evaluate("window.notReloaded") is True
    assert row.get_attribute("data-unfinished") is None
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "portal-log-live.png"), full_page=True)

    # Nothing left unfinished: no more polls.
    settled = len(polls)
    page.wait_for_timeout(5000)
    assert len(polls) == settled


def test_a_hidden_tab_polls_nothing(browser, live_server):
    endpoint = tenant_endpoint(TENANT)
    waiting = make_delivery(endpoint, DeliveryStatus.RETRYING)
    polls: list[str] = []
    page = browser.new_page()
    page.on("request", lambda r: polls.append(r.url) if "/deliveries/rows/" in r.url else None)
    page.goto(f"{live_server.url}/portal/access/?token={make_token(TENANT)}")
    page.goto(f"{live_server.url}/portal/deliveries/")
    set_hidden(page, True)

    page.wait_for_timeout(6000)  # three first-poll intervals
    hidden = len(polls)
    set_hidden(page, False)
    page.wait_for_timeout(4000)

    assert hidden == 0
    assert polls and f"ids={waiting.pk}" in polls[0]


def test_the_admin_delivery_list_pages_older_and_newer_and_filters_by_endpoint_id(
    browser, live_server, django_user_model
):
    from playwright.sync_api import expect

    django_user_model.objects.create_superuser("root", password="pw")
    shop = tenant_endpoint(TENANT, description="Shop")
    other = tenant_endpoint(TENANT, url="http://127.0.0.1:9/other")
    for n in range(55):
        make_delivery(shop if n % 2 else other, DeliveryStatus.SUCCEEDED, attempts=[(200, 5)])
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "root")
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    page.goto(f"{live_server.url}/admin/deliveries/delivery/")

    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(50)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-delivery-list.png"), full_page=True)
    page.click("#keyset-pages a[rel=next]")
    expect(rows).to_have_count(5)
    page.click("#keyset-pages a[rel=prev]")
    expect(rows).to_have_count(50)

    # The endpoint filter is a field for an id, not a link per endpoint.
    field = page.locator('#changelist-filter input[name="subscription__id__exact"]')
    field.fill(str(shop.pk))
    field.press("Enter")
    expect(rows).to_have_count(27)
    assert "http://127.0.0.1:9/other" not in page.inner_text("#changelist-filter")
