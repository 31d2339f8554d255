"""Portal links in a real headless Chromium against a live server: a link opens the portal
once, and following another tenant's link never swaps a browser silently (a portal session of
another tenant, or a user logged in to the host's site, is asked first).

Screenshots: artifacts/portal-link-used.png, portal-link-confirm.png (a portal session of
another tenant), portal-link-confirm-host-user.png (logged in to the admin); each checked with
axe-core like the other portal pages.
"""

from __future__ import annotations

import pytest

from subscriptions.models import Tenant
from tests.browser import chromium, needs_chromium
from tests.portal_helpers import tenant_endpoint
from tests.test_browser_portal import DESKTOP, Pages
from webhooks_portal import access
from webhooks_portal.models import PortalGrant

pytestmark = [pytest.mark.browser, needs_chromium]


@pytest.fixture
def browser(live_server, monkeypatch):
    with chromium(monkeypatch) as launched:
        yield launched


@pytest.fixture
def tenants(transactional_db):
    Tenant.objects.create(key="acme", name="Acme Inc.")
    Tenant.objects.create(key="globex", name="Globex Corp.")
    tenant_endpoint("acme", description="Acme orders")
    tenant_endpoint("globex", description="Globex orders")


def link(live_server, tenant: str) -> str:
    return live_server.url + access.entry_path(access.make_token(tenant))


def test_a_link_opens_the_portal_once(browser, live_server, tenants):
    from playwright.sync_api import expect

    pages = Pages()
    url = link(live_server, "acme")
    first = browser.new_context(viewport=DESKTOP).new_page()
    first.goto(url)
    expect(first.locator("h1")).to_have_text("Endpoints")
    expect(first.locator("main")).to_contain_text("Acme orders")

    # The same link, in another browser (copied from a log, a history, a shoulder).
    second = browser.new_context(viewport=DESKTOP).new_page()
    answer = second.goto(url)

    assert answer.status == 403
    expect(second.locator("h1")).to_have_text("This link was already used")
    expect(second.locator("main")).to_contain_text("Ask for a new one")
    pages.check(second, "link-used")
    second.goto(f"{live_server.url}/portal/endpoints/")
    expect(second.locator("h1")).to_have_text("This page needs a portal link")

    # "Leave" ends the first browser's session for good; its link stays spent.
    first.click('button:has-text("Leave")')
    expect(first.locator("h1")).to_have_text("You have left the portal")
    first.goto(url)
    expect(first.locator("h1")).to_have_text("This link was already used")
    assert pages.violations == [], "\n".join(pages.violations)


def test_another_tenants_link_asks_before_switching_an_open_portal(browser, live_server, tenants):
    from playwright.sync_api import expect

    pages = Pages()
    victim = browser.new_context(viewport=DESKTOP).new_page()
    victim.goto(link(live_server, "acme"))
    expect(victim.locator("main")).to_contain_text("Acme orders")

    # The attacker's own link, opened in the victim's browser by one top-level navigation.
    planted = link(live_server, "globex")
    victim.goto(planted)

    expect(victim.locator("h1")).to_have_text("Open the portal of Globex Corp.?")
    expect(victim.locator("#link-confirm")).to_contain_text(
        "This browser shows the portal of Acme Inc."
    )
    pages.check(victim, "link-confirm")
    # Declining keeps the current portal; the link is not spent.
    victim.click("#keep-portal")
    expect(victim.locator("main")).to_contain_text("Acme orders")
    assert PortalGrant.objects.filter(tenant_id="globex", used_at__isnull=True).count() == 1

    # A cross-site form that POSTs the link straight away carries no CSRF token: refused.
    victim.set_content(
        f'<form method="post" action="{live_server.url}/portal/access/">'
        f'<input name="token" value="{planted.split("token=")[1]}"></form>'
    )
    with victim.expect_navigation():
        victim.evaluate("document.forms[0].submit()")
    victim.goto(f"{live_server.url}/portal/endpoints/")
    expect(victim.locator("main")).to_contain_text("Acme orders")

    # Confirming on the page itself switches.
    victim.goto(planted)
    victim.click("#switch-portal")
    expect(victim.locator("h1")).to_have_text("Endpoints")
    expect(victim.locator("main")).to_contain_text("Globex orders")
    assert pages.violations == [], "\n".join(pages.violations)


def test_a_link_asks_a_user_logged_in_to_the_host(browser, live_server, tenants, django_user_model):
    from playwright.sync_api import expect

    pages = Pages()
    django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-1234")
    page = browser.new_context(viewport=DESKTOP).new_page()
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "root")
    page.fill("#id_password", "pw-root-1234")
    page.click('input[type="submit"]')
    expect(page.locator("#site-name")).to_be_visible()

    page.goto(link(live_server, "globex"))

    expect(page.locator("h1")).to_have_text("Open the portal of Globex Corp.?")
    expect(page.locator("#link-confirm")).to_contain_text("not a user of Globex Corp.")
    pages.check(page, "link-confirm-host-user")
    page.click("#switch-portal")
    expect(page.locator("main")).to_contain_text("Globex orders")

    # A fresh browser enters directly, as always.
    fresh = browser.new_context(viewport=DESKTOP).new_page()
    fresh.goto(link(live_server, "acme"))
    expect(fresh.locator("h1")).to_have_text("Endpoints")
    assert pages.violations == [], "\n".join(pages.violations)
