"""The portal embedded in an iframe of the host's product, the way docs/portal.md recommends:
the product on another origin of the same site (here another port of localhost; in production
app.example.com framing hooks.example.com), allowed by PORTAL_FRAME_ANCESTORS, the session
cookie working with Django's default SameSite=Lax; and refused by the browser when the
product's origin is not allowed."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.conf import settings
from django.test import override_settings

from tests.browser import ARTIFACTS, chromium, needs_chromium
from tests.portal_helpers import tenant_endpoint
from webhooks_portal.access import entry_path, make_token

pytestmark = [pytest.mark.browser, needs_chromium]


class Product:
    """The host's product on another origin of the portal's site: one page that frames the
    portal link."""

    def __init__(self, portal_url: str) -> None:
        page = (
            "<!DOCTYPE html><html lang='en'><head><title>Product</title></head><body>"
            f"<h1>Our product</h1><iframe id='portal' title='Webhooks' src='{portal_url}' "
            "width='1200' height='700'></iframe></body></html>"
        ).encode()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/html; charset=utf-8")
                self.send_header("content-length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.origin = f"http://localhost:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def framed(live_server, monkeypatch, db):
    tenant_endpoint("acme", description="Framed hook")
    product = Product(live_server.url + entry_path(make_token("acme")))
    with chromium(monkeypatch) as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        yield product, context.new_page()
        context.close()
    product.stop()


def test_the_portal_works_in_an_iframe_of_an_allowed_site(framed):
    product, page = framed
    embedding = {"PORTAL_FRAME_ANCESTORS": ["'self'", product.origin]}
    with override_settings(WEBHOOKS={**settings.WEBHOOKS, **embedding}):
        page.goto(product.origin)
        frame = page.frame_locator("#portal")
        from playwright.sync_api import expect

        expect(frame.locator("h1")).to_have_text("Endpoints", timeout=15_000)
        expect(frame.locator("#endpoints")).to_contain_text("Framed hook")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "portal-iframe.png"), full_page=True)


def test_a_site_not_allowed_cannot_frame_the_portal(framed):
    product, page = framed

    page.goto(product.origin)
    page.wait_for_timeout(1500)

    frame = page.frame(url=lambda url: "/portal/" in url)
    content = frame.content() if frame is not None else ""
    assert "Framed hook" not in content
    # The same page opened directly (not framed) works: only framing was refused.
    page.goto(page.locator("#portal").get_attribute("src"))
    assert "Framed hook" in page.content()
