"""The portal in headless Chromium: deleting an endpoint keeps its history, marked "endpoint
deleted", and a delivery held by an in-flight cap says why. Screenshots:
artifacts/portal-delete-*.png."""

from __future__ import annotations

import pytest
from django.utils import timezone

from deliveries.models import DeliveryStatus
from deliveries.services import states
from tests.browser import ARTIFACTS, chromium, needs_chromium
from tests.ops_helpers import make_delivery
from tests.portal_helpers import portal_url, tenant_endpoint

pytestmark = [pytest.mark.browser, needs_chromium, pytest.mark.django_db(transaction=True)]

TENANT = "acme"


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"portal-delete-{name}.png"), full_page=True)


def test_a_deleted_endpoint_keeps_its_history_and_a_held_delivery_says_why(
    live_server, monkeypatch
):
    from webhooks_portal.access import make_token

    gone = tenant_endpoint(TENANT, "https://old.example.com/hooks", description="Old ERP")
    done = make_delivery(gone, DeliveryStatus.SUCCEEDED, attempts=[(200, 41)])
    busy = tenant_endpoint(TENANT, "https://busy.example.com/hooks", description="Busy CRM")
    held = make_delivery(busy, DeliveryStatus.PENDING, next_attempt_at=timezone.now())
    # Refused by its endpoint's cap, as a worker's attempt is: claimed, then given back.
    assert states.claim(held.pk, 1) is not None
    assert states.release(held.pk, 1, until=timezone.now(), wait_reason="endpoint_cap")

    with chromium(monkeypatch) as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{live_server.url}/portal/access/?token={make_token(TENANT)}")
        page.goto(live_server.url + portal_url("endpoint-delete", gone.pk))
        assert "stays in the delivery log" in page.inner_text("#history-count")
        shot(page, "confirm")
        page.get_by_role("button", name="Delete endpoint").click()
        page.wait_for_load_state("load")

        page.goto(live_server.url + portal_url("deliveries"))
        rows = page.locator("tr[data-delivery]")
        deleted_row = rows.filter(has_text="Old ERP")
        assert "endpoint deleted" in deleted_row.inner_text()
        assert deleted_row.locator("a", has_text="Old ERP").count() == 0  # no link to a 404
        assert "Endpoint at its in-flight cap" in rows.filter(has_text="Busy CRM").inner_text()
        shot(page, "log")

        page.goto(live_server.url + portal_url("delivery", done.pk))
        assert page.locator("#endpoint-deleted").is_visible()
        shot(page, "detail")
        page.goto(live_server.url + portal_url("delivery", held.pk))
        assert "Endpoint at its in-flight cap" in page.inner_text("#waiting-for")
        shot(page, "held")
