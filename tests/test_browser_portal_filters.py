"""The endpoint form's filter and channels fields and its preview panel, in a real headless
Chromium against a live server: a tenant drafts an endpoint for big EU orders, previews what it
would have received from their last events (never another tenant's), fixes a malformed filter
the panel points at, and saves.

Screenshots: artifacts/portal-filters-*.png (the empty form, a refused draft, the preview, the
saved endpoint). Each page is checked with axe-core like the other portal pages.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from deliveries.models import Event
from subscriptions.models import EventType, Subscription, Tenant
from tests.browser import ARTIFACTS, chromium, needs_chromium
from webhooks_portal.access import make_token

pytestmark = [pytest.mark.browser, needs_chromium]

TENANT = "acme"
BLOCKING_IMPACTS = {"serious", "critical"}


@pytest.fixture
def browser(live_server, monkeypatch):
    with chromium(monkeypatch) as launched:
        yield launched


def shot(page, name: str, violations: list[str]) -> None:
    from axe_playwright_python.sync_playwright import Axe

    page.wait_for_load_state("load")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"portal-filters-{name}.png"), full_page=True)
    for violation in Axe().run(page).response["violations"]:
        if violation.get("impact") in BLOCKING_IMPACTS:
            violations.append(f"{name}: {violation['id']}: {violation['help']}")


def history() -> dict[str, Event]:
    Tenant.objects.create(key=TENANT, name="Acme Inc.")
    Tenant.objects.create(key="rival", name="Rival")
    for name in ("order.created", "order.paid", "invoice.sent"):
        EventType.objects.create(name=name)
    now = timezone.now()
    rows = {
        "big-eu": ("order.created", {"id": 1, "total": 250, "region": "eu"}, ["eu"]),
        "small-eu": ("order.created", {"id": 2, "total": 5, "region": "eu"}, ["eu"]),
        "big-us": ("order.created", {"id": 3, "total": 900, "region": "us"}, ["us"]),
        "invoice": ("invoice.sent", {"id": 4, "total": 250}, ["eu"]),
    }
    events = {
        key: Event.objects.create(
            tenant_id=TENANT,
            type=type,
            data=data,
            channels=channels,
            created_at=now - dt.timedelta(minutes=i + 1),
        )
        for i, (key, (type, data, channels)) in enumerate(rows.items())
    }
    events["rival"] = Event.objects.create(
        tenant_id="rival", type="order.created", data={"id": 99, "total": 999}, channels=["eu"]
    )
    return events


def test_a_tenant_previews_a_filtered_endpoint_and_saves_it(transactional_db, browser, live_server):
    from playwright.sync_api import expect

    history()
    violations: list[str] = []
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{live_server.url}/portal/access/?token={make_token(TENANT)}")
    page.goto(f"{live_server.url}/portal/endpoints/new/")
    expect(page.locator("#simulation")).to_contain_text("Nothing is saved or sent")
    page.fill("#id_url", "http://127.0.0.1:9/orders")
    page.fill("#id_description", "Big EU orders")
    page.check('input[name="event_types"][value="order.created"]')
    page.fill("#id_channels", "eu")
    shot(page, "empty", violations)

    # A malformed filter: the panel names the place, and what was typed stays in the form.
    page.fill("#id_filter", '{"data.total": {"$gte": "a lot", "$foo": 1}}')
    page.click("text=Preview matching events")
    expect(page.locator("#simulation .errorlist")).to_contain_text(
        "data.total > $foo: unknown operator"
    )
    expect(page.locator("#id_url")).to_have_value("http://127.0.0.1:9/orders")
    shot(page, "refused", violations)

    page.fill("#id_filter", '{"data.total": {"$gte": 100}}')
    page.click("text=Preview matching events")
    result = page.locator("#simulation .simulation-result")
    expect(result).to_contain_text("1 of your last 4 events would have been sent.")
    rows = page.locator("#simulation table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text('"total": 250')
    expect(page.locator("#simulation")).not_to_contain_text("999")  # the rival's order
    assert not Subscription.objects.exists()  # a preview saves nothing
    shot(page, "preview", violations)

    # Widening the draft to every channel takes the US order too.
    page.fill("#id_channels", "")
    page.click("text=Preview matching events")
    expect(result).to_contain_text("2 of your last 4 events would have been sent.")

    page.fill("#id_channels", "eu")
    page.click("button.primary")
    expect(page.locator("h1")).to_contain_text("Big EU orders")
    expect(page.locator("#endpoint-filter")).to_contain_text('{"data.total": {"$gte": 100}}')
    expect(page.locator("#endpoint-channels")).to_have_text("eu")
    shot(page, "saved", violations)
    sub = Subscription.objects.get(description="Big EU orders")
    assert (sub.filter, sub.channels, sub.tenant_id) == (
        {"data.total": {"$gte": 100}},
        ["eu"],
        TENANT,
    )

    page.goto(f"{live_server.url}/portal/endpoints/{sub.pk}/edit/")
    expect(page.locator("#id_filter")).to_have_value(
        '{\n  "data.total": {\n    "$gte": 100\n  }\n}'
    )
    expect(page.locator("#id_channels")).to_have_value("eu")
    assert violations == []
