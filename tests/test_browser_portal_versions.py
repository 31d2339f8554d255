"""The version switch in the portal, in a real headless Chromium against a live server, a
real worker and a real receiver: a tenant whose endpoint receives `shop.order.placed` v2 sees
its own last order rendered in v3, moves, and the next order arrives as v3.

Screenshots: artifacts/portal-versions-*.png (endpoint page before and after, the preview, the
catalog's versions). Each page is checked with axe-core like the other portal pages.
"""

from __future__ import annotations

import pytest

from deliveries.models import Delivery, DeliveryStatus
from deliveries.services import publish
from subscriptions.models import Subscription
from tests.browser import ARTIFACTS, chromium, needs_chromium
from tests.contract_types import NAME, an_order
from tests.factories import make_subscription
from tests.procs import wait_until
from webhooks_portal.access import make_token
from webhooks_receiver import verify

pytestmark = [pytest.mark.browser, needs_chromium]

TENANT = "acme"
BLOCKING_IMPACTS = {"serious", "critical"}


@pytest.fixture
def browser(live_server, monkeypatch):
    with chromium(monkeypatch) as launched:
        yield launched


def shot(page, name: str, violations: list[str]) -> None:
    """Save the page as artifacts/portal-versions-<name>.png and note axe-core's serious
    findings."""
    from axe_playwright_python.sync_playwright import Axe

    page.wait_for_load_state("load")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"portal-versions-{name}.png"), full_page=True)
    for violation in Axe().run(page).response["violations"]:
        if violation.get("impact") in BLOCKING_IMPACTS:
            violations.append(f"{name}: {violation['id']}: {violation['help']}")


def delivered(event) -> Delivery | None:
    return Delivery.objects.filter(event=event, status=DeliveryStatus.SUCCEEDED).first()


def test_a_tenant_previews_and_moves_to_a_newer_version(
    transactional_db, contract_types, browser, live_server, worker, receiver
):
    from playwright.sync_api import expect

    endpoint = make_subscription(
        receiver.url("/orders"), [NAME], tenant=TENANT, versions={NAME: 2}, description="Orders"
    )
    first = publish(NAME, an_order(id=501), tenant=TENANT)
    assert wait_until(lambda: delivered(first) is not None)
    assert verify(endpoint.secret, *_last(receiver))["version"] == 2
    violations: list[str] = []
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.set_default_timeout(20_000)

    page.goto(f"{live_server.url}/portal/access/?token={make_token(TENANT)}")
    page.goto(f"{live_server.url}/portal/endpoints/{endpoint.pk}/")
    row = page.locator(f'#event-versions tr[data-type="{NAME}"]')
    expect(row.locator(".pinned-version")).to_have_text("2")
    shot(page, "endpoint-before", violations)

    # The preview: their own order 501, as v3 would send it, beside what they get now.
    row.locator("a").click()
    expect(page.locator("h1")).to_contain_text(NAME)
    expect(page.locator("#current-version")).to_contain_text("version 2")
    expect(page.locator("#id_version")).to_have_value("3")
    preview = page.locator("#wanted-preview pre")
    expect(preview).to_contain_text('"version": 3')
    expect(preview).to_contain_text('"currency": "EUR"')
    expect(preview).to_contain_text('"id": 501')
    expect(page.locator("#version-previews section").first.locator("pre")).to_contain_text(
        '"version": 2'
    )
    expect(page.locator("#wanted-preview .preview-source")).to_contain_text("Your latest event")
    # A deprecated version is not on offer.
    assert page.locator("#id_version option").all_inner_texts() == ["3 (latest)", "2 (current)"]
    shot(page, "preview", violations)

    page.click("#switch-version")
    expect(page.locator(".messages, [role=status]").first).to_contain_text("version 3")
    expect(row.locator(".pinned-version")).to_have_text("3")
    shot(page, "endpoint-after", violations)
    assert Subscription.objects.get(pk=endpoint.pk).versions == {NAME: 3}

    # The next order arrives as v3, and its delivery says so.
    second = publish(NAME, an_order(id=502), tenant=TENANT)
    assert wait_until(lambda: delivered(second) is not None)
    assert delivered(second).version == 3
    body = verify(endpoint.secret, *_last(receiver))
    assert body["version"] == 3 and body["data"]["id"] == 502

    page.goto(f"{live_server.url}/portal/event-types/")
    expect(page.locator(".catalog-version")).to_have_count(3)
    expect(page.locator(".catalog-version").last).to_contain_text("Deprecated")
    shot(page, "catalog", violations)
    assert not violations, violations


def _last(receiver) -> tuple[bytes, dict[str, str]]:
    request = receiver.requests_to("/orders")[-1]
    return request.body, request.headers
