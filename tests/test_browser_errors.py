"""Long attempt errors in a real headless Chromium: the portal's and the admin's delivery lists
and delivery pages at 1,400 px and at 390 px. Lists show the one-line summary; the delivery
page shows the raw detail, wrapped. No element is pushed past the right edge of the window.
Screenshots: artifacts/errors-*.png."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from deliveries.models import DeliveryAttempt, DeliveryStatus
from deliveries.services import attempt_delivery
from tests.browser import ARTIFACTS, chromium, needs_chromium
from tests.factories import make_subscription, make_tenant_user
from tests.ops_helpers import make_delivery
from tests.procs import free_port
from tests.receiver import Reply

pytestmark = [pytest.mark.browser, needs_chromium]

TENANT = "acme"
WIDTHS = [1400, 390]

# What lies past the right edge of the window: elements whose box ends beyond it, and boxes
# that scroll sideways (a column hidden in a scrolled box is off-screen too).
OVERFLOW_JS = """
() => {
  const width = document.documentElement.clientWidth;
  const out = [];
  for (const el of document.querySelectorAll('body *')) {
    const style = getComputedStyle(el);
    if (['auto', 'scroll'].includes(style.overflowX) && el.scrollWidth > el.clientWidth + 1) {
      out.push('scrolls: ' + el.tagName + '.' + el.className + ' ' + el.scrollWidth
               + ' > ' + el.clientWidth);
    }
  }
  for (const el of document.querySelectorAll('body *')) {
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) continue;
    let clipped = false;
    for (let p = el.parentElement; p; p = p.parentElement) {
      const style = getComputedStyle(p);
      if (['auto', 'scroll', 'hidden'].includes(style.overflowX) && p !== document.body
          && p !== document.documentElement) { clipped = true; break; }
    }
    if (!clipped && box.right > width + 1) {
      out.push(el.tagName + '.' + el.className + ' ' + Math.round(box.right));
    }
  }
  return {width, scrollWidth: document.documentElement.scrollWidth, out: out.slice(0, 10)};
}
"""


def long_failures(receiver) -> list:
    """Real failures with long raw errors: a refused connection to a closed port (its error is
    urllib3's long repr), and a 503 from a receiver, on endpoints with long URLs."""
    path = "/hooks/" + "a-very-long-path-segment-" * 6
    closed = make_subscription(
        f"http://127.0.0.1:{free_port()}{path}", tenant=TENANT, description="Refused"
    )
    receiver.script(path, Reply(503, body=b"x" * 3000))
    busy = make_subscription(receiver.url(path), tenant=TENANT, description="Busy")
    made = []
    for sub in (closed, busy, closed):
        delivery = make_delivery(sub, DeliveryStatus.PENDING, next_attempt_at=timezone.now())
        attempt_delivery(delivery.pk, 1)
        made.append(delivery)
    return made


def session_cookie(live_server, user) -> dict:
    client = Client()
    client.force_login(user)
    return {
        "name": settings.SESSION_COOKIE_NAME,
        "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
        "url": live_server.url,
    }


@pytest.mark.django_db(transaction=True)
def test_long_attempt_errors_wrap_in_portal_and_admin(
    live_server, monkeypatch, receiver, django_user_model
):
    deliveries = long_failures(receiver)
    refused = deliveries[0]
    raw = DeliveryAttempt.objects.get(delivery=refused).error
    assert len(raw) > 150 and "TrackedHTTPPool" in raw
    tenant_user = make_tenant_user("ann", TENANT)
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    pages = {
        "portal-list": (tenant_user, "/portal/deliveries/"),
        "portal-delivery": (tenant_user, f"/portal/deliveries/{refused.pk}/"),
        "admin-list": (admin, reverse("admin:deliveries_delivery_changelist")),
        "admin-delivery": (admin, reverse("admin:deliveries_delivery_change", args=[refused.pk])),
    }
    problems = []
    ARTIFACTS.mkdir(exist_ok=True)

    with chromium(monkeypatch) as browser:
        for width in WIDTHS:
            for name, (user, path) in pages.items():
                context = browser.new_context(viewport={"width": width, "height": 900})
                context.add_cookies([session_cookie(live_server, user)])
                page = context.new_page()
                response = page.goto(live_server.url + path)
                assert response.status == 200, (name, response.status)
                if name.endswith("delivery"):
                    # Open every disclosure so the raw detail is laid out too.
                    page.evaluate(
                        "document.querySelectorAll('details').forEach(d => d.open = true)"
                    )
                page.screenshot(path=str(ARTIFACTS / f"errors-{name}-{width}.png"), full_page=True)
                text = page.inner_text("body")
                if name.endswith("list"):
                    assert "Connection refused by 127.0.0.1:" in text, name
                    assert "Receiver answered 503" in text, name
                    assert "TrackedHTTPPool" not in text, name
                else:
                    assert "TrackedHTTPPool" in text, name  # the raw detail, on its page
                layout = page.evaluate(OVERFLOW_JS)
                if layout["scrollWidth"] > layout["width"] + 1 or layout["out"]:
                    problems.append((name, width, layout))
                context.close()

    assert problems == [], "\n".join(map(str, problems))
