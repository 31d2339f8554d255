"""The portal's delivery-log search and "Retry the matches" in a real headless Chromium: the
event type as endpoints subscribe (`invoice.*`), several statuses, the count before the retry,
the three empty states, and no sideways scrolling at 390 px. Screenshots in artifacts/:
portal-search-results.png, portal-search-retry-confirm.png, portal-search-retried.png,
portal-search-no-match.png, portal-search-invalid.png, portal-search-nothing-yet.png,
portal-search-390.png."""

from __future__ import annotations

import pytest

from deliveries.models import Delivery, DeliveryStatus
from subscriptions.models import Tenant
from tests.browser import ARTIFACTS, needs_chromium
from tests.search_helpers import endpoint, logged
from webhooks_portal.access import make_token

pytestmark = [pytest.mark.browser, needs_chromium]

TENANT = "acme"


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def no_sideways_scroll(page) -> bool:
    return page.evaluate(
        "document.scrollingElement.scrollWidth <= document.scrollingElement.clientWidth"
    )


def test_search_retry_the_matches_and_empty_states(browser, live_server, broker):
    from playwright.sync_api import expect

    Tenant.objects.create(key=TENANT, name="Acme Inc.")
    shop = endpoint(TENANT, "http://127.0.0.1:9/shop", description="Shop")
    failed = [
        logged(shop, "invoice.paid", minutes=1),
        logged(shop, "invoice.line.added", minutes=2),
        logged(shop, "invoice.created", DeliveryStatus.DISCARDED, minutes=3),
    ]
    order = logged(shop, "order.created", minutes=4)
    paid = logged(shop, "invoice.paid", DeliveryStatus.SUCCEEDED, code=200, minutes=5)
    theirs = logged(endpoint("globex", "http://127.0.0.1:9/g"), "invoice.paid")

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/portal/access/?token={make_token(TENANT)}")
    page.goto(f"{live_server.url}/portal/deliveries/")
    rows = page.locator("tr[data-delivery]")
    expect(rows).to_have_count(5)

    # Search: invoice.* among failed or discarded.
    page.fill("#id_type", "invoice.*")
    page.check("input[name=status][value=failed]")
    page.check("input[name=status][value=discarded]")
    page.click("#delivery-filters button[type=submit]")
    expect(rows).to_have_count(3)
    shown = {int(r.get_attribute("data-delivery")) for r in rows.all()}
    assert shown == {d.pk for d in failed}
    shot(page, "portal-search-results")

    # Retry the matches: the count first, then the retry, back on the same search.
    page.click("#retry-matches")
    expect(page.locator("#bulk-retry-count")).to_contain_text("3 deliveries match")
    assert [Delivery.objects.get(pk=d.pk).status for d in failed] == [
        "failed",
        "failed",
        "discarded",
    ]
    shot(page, "portal-search-retry-confirm")
    page.click("#bulk-retry-confirm")
    expect(page.locator("body")).to_contain_text("3 of 3 matching deliveries queued")
    assert page.input_value("#id_type") == "invoice.*"
    statuses = [Delivery.objects.get(pk=d.pk).status for d in (*failed, order, paid, theirs)]
    assert statuses == ["retrying"] * 3 + ["failed", "succeeded", "failed"]
    shot(page, "portal-search-retried")

    # Nothing matches: said so, with a link that clears the filter.
    page.fill("#id_type", "refund.*")
    page.click("#delivery-filters button[type=submit]")
    expect(page.locator("#empty-no-match")).to_contain_text("No delivery matches this filter")
    shot(page, "portal-search-no-match")
    page.click("#empty-no-match a")
    expect(rows).to_have_count(5)

    # An invalid filter: the error, not an empty log.
    page.fill("#id_filter", '{"data.amount": {"$regex": "x"}}')
    page.click("#delivery-filters button[type=submit]")
    expect(page.locator("#empty-invalid")).to_contain_text("$regex")
    expect(page.locator("#empty-nothing-yet")).to_have_count(0)
    shot(page, "portal-search-invalid")

    # At 390 px the search form and the results fit: nothing scrolls sideways.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/portal/deliveries/?type=invoice.*&status=failed&status=retrying")
    expect(rows).to_have_count(3)
    assert no_sideways_scroll(page)
    shot(page, "portal-search-390")

    # A tenant with no delivery at all: "nothing yet", whatever the filter.
    Tenant.objects.create(key="newco", name="Newco")
    fresh = browser.new_page(viewport={"width": 1280, "height": 700})
    fresh.goto(f"{live_server.url}/portal/access/?token={make_token('newco')}")
    fresh.goto(f"{live_server.url}/portal/deliveries/?type=invoice.*")
    expect(fresh.locator("#empty-nothing-yet")).to_be_visible()
    expect(fresh.locator("#retry-matches")).to_have_count(0)
    shot(fresh, "portal-search-nothing-yet")


def test_admin_retry_the_matching_deliveries(browser, live_server, broker, staff_user):
    """The admin's delivery list filtered by event type wildcard, then "Retry the matching
    deliveries": the confirmation page with the count, then the list again. Screenshots:
    admin-retry-matching-confirm.png, admin-retry-matching-done.png."""
    from playwright.sync_api import expect

    from tests.browser import login

    shop = endpoint(TENANT, "http://127.0.0.1:9/shop")
    matching = [logged(shop, "invoice.paid", minutes=i) for i in range(2)]
    other = logged(shop, "order.created", minutes=3)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    login(page, live_server.url)
    page.goto(f"{live_server.url}/admin/deliveries/delivery/?event__type=invoice.*")
    expect(page.locator("#result_list tbody tr")).to_have_count(2)
    page.click("#webhooks-retry-matching a")
    expect(page.locator("#retry-matching-count")).to_contain_text("2 deliveries match")
    shot(page, "admin-retry-matching-confirm")
    page.click("input[name=confirm]")
    expect(page.locator(".messagelist")).to_contain_text("2 of 2 matching deliveries queued")
    assert "event__type=invoice" in page.url
    shot(page, "admin-retry-matching-done")
    statuses = [Delivery.objects.get(pk=d.pk).status for d in (*matching, other)]
    assert statuses == ["retrying", "retrying", "failed"]
