"""The portal's trust pages in a real headless Chromium: an endpoint signing v1a shows its
public key and the allow-list of egress addresses; the rotation page offers the overlap. Saved
as artifacts/portal-trust-*.png and checked with axe-core (no serious or critical violation)."""

from __future__ import annotations

import pytest

from subscriptions.models import Subscription
from tests.browser import needs_chromium
from tests.portal_helpers import tenant_endpoint
from tests.test_browser_portal import Pages, link_for

pytestmark = [pytest.mark.browser, needs_chromium]
IPS = ["203.0.113.7", "203.0.113.8"]


def test_public_key_allow_list_and_rotation_overlap(
    browser, live_server, django_user_model, webhooks
):
    webhooks(EGRESS_IPS=IPS)
    endpoint = tenant_endpoint("acme", description="Order sync", signature_scheme="v1 v1a")
    pages = Pages()
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(link_for(live_server, django_user_model, "acme"))

    page.goto(f"{live_server.url}/portal/endpoints/{endpoint.pk}/")
    pages.check(page, "trust-endpoint")
    assert page.locator("#public-key").inner_text() == endpoint.public_key
    assert page.locator("#egress-ips li").all_inner_texts() == IPS
    assert "v1 and v1a" in page.locator("#signature-scheme").inner_text()
    assert endpoint.signing_key not in page.content()

    page.goto(f"{live_server.url}/portal/endpoints/{endpoint.pk}/rotate-secret/")
    pages.check(page, "trust-rotate")
    page.select_option("select[name=overlap]", "3600")
    page.get_by_role("button", name="Create a new secret").click()
    page.wait_for_load_state("load")
    pages.check(page, "trust-rotated")
    fresh = Subscription.objects.get(pk=endpoint.pk)
    assert page.locator("#public-key").inner_text() == fresh.public_key != endpoint.public_key
    assert "1 hour" in page.content()

    page.goto(f"{live_server.url}/portal/endpoints/{endpoint.pk}/edit/")
    pages.check(page, "trust-edit")
    assert page.locator("input[name=signature_scheme][value='v1 v1a']").is_checked()
    assert pages.violations == []
