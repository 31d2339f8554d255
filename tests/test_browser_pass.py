"""Issue 28, a page-by-page pass in headless Chromium: every portal page and the main admin
pages, at 1,400 px (the admin's navigation sidebar open) and at 390 px, in a state with data:
a failing endpoint (a real 500, a retry parked for the sweep), a recovered one (500 then 200),
a disabled one (with a skipped delivery), a final 400, long names and URLs.

On every page: no sideways scroll of the page, no table wider than the box it scrolls in, no
name or URL broken inside a word (only after `.`, `/`, `-` or `_`), no console error, no
asset answering 4xx/5xx, and the portal's pages name a favicon that is served. Screenshots:
artifacts/pass-<width>-<page>.png. The form test submits two bad fields at once, in the portal
and in the admin, and sees both errors.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pytest
from django.urls import reverse
from django.utils import timezone

from deliveries.models import DeliveryStatus, Event
from deliveries.services import attempt_delivery, publish
from subscriptions.models import EventType, Subscription, Tenant
from subscriptions.services import disable_subscription
from tests.browser import ARTIFACTS, chromium, login, needs_chromium
from tests.ops_helpers import make_delivery, roll_up
from tests.portal_helpers import order_type, portal_url, tenant_endpoint
from tests.receiver import Reply

pytestmark = [pytest.mark.browser, needs_chromium, pytest.mark.django_db(transaction=True)]

TENANT = "acme"
WIDE = {"width": 1400, "height": 900}
PHONE = {"width": 390, "height": 844}
LONG_URL_PATH = "/webhooks/v2/customer-events/order_notifications/incoming"

# Problems of the page as it is laid out (run in the page). Tables: each must fit the box it
# scrolls in (its nearest ancestor with overflow-x other than visible, else the page). Words:
# a text node is cut only at the <wbr> after '.', '/', '-' or '_' (a text node ends there), so
# a word of one text node that spans two lines was broken inside.
LAYOUT_PROBLEMS = """
(checkWords) => {
  const problems = [];
  const page = document.scrollingElement;
  if (page.scrollWidth > window.innerWidth) {
    problems.push(`page scrolls sideways: ${page.scrollWidth} > ${window.innerWidth}`);
  }
  const name = (el) => el.id ? '#' + el.id
    : (el.className ? '.' + String(el.className).split(' ')[0] : el.tagName);
  for (const table of document.querySelectorAll('table')) {
    if (!table.offsetParent) continue;
    let box = table.parentElement;
    while (box && box !== document.body) {
      const overflow = getComputedStyle(box).overflowX;
      if (overflow !== 'visible') break;
      box = box.parentElement;
    }
    if (!box || box === document.body) box = page;
    if (box.scrollWidth > box.clientWidth + 1) {
      problems.push(
        `table ${name(table)} wider than ${name(box)}: ${box.scrollWidth} > ${box.clientWidth}`
      );
    }
  }
  if (checkWords) {
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const parent = node.parentElement;
      if (!parent || !parent.offsetParent) continue;
      const skipped = 'pre, textarea, script, style, .visually-hidden, svg, .secret-box';
      if (parent.closest(skipped)) continue;
      const text = node.textContent;
      // Pieces that may not be split: up to and including a run of '.', '/', '-' or '_' (or
      // the '…' where the admin shortens a long URL).
      const re = /[^\\s./_…-]+[./_…-]*/g;
      let match;
      while ((match = re.exec(text))) {
        if (match[0].length < 4) continue;
        const range = document.createRange();
        range.setStart(node, match.index);
        range.setEnd(node, match.index + match[0].length);
        const tops = new Set();
        for (const rect of range.getClientRects()) {
          if (rect.width > 0) tops.add(Math.round(rect.top));
        }
        if (tops.size > 1) problems.push(`"${match[0]}" broken inside a word in ${name(parent)}`);
      }
    }
  }
  return problems;
}
"""


@dataclass
class Watch:
    """What went wrong while pages loaded: console errors and failing responses."""

    errors: list[str] = field(default_factory=list)

    def attach(self, page) -> None:
        page.on(
            "console",
            lambda msg: self.errors.append(f"console {msg.type}: {msg.text}")
            if msg.type == "error"
            else None,
        )
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        page.on(
            "response",
            lambda response: self.errors.append(f"{response.status} {response.url}")
            if response.status >= 400
            else None,
        )


def fail_or_succeed(subscription: Subscription, *, parked: bool = False) -> None:
    """One real attempt of a new delivery to `subscription` (the receiver answers as scripted).
    With `parked`, a failed delivery's next attempt is moved 10 minutes on, as a parked retry
    is (beyond a Celery countdown: the sweep sends it)."""
    delivery = make_delivery(
        subscription, DeliveryStatus.PENDING, next_attempt_at=timezone.now()
    )
    attempt_delivery(delivery.pk, 1)
    if parked:
        delivery.refresh_from_db()
        delivery.status = DeliveryStatus.RETRYING
        delivery.next_attempt_at = timezone.now() + dt.timedelta(minutes=10)
        delivery.save(update_fields=["status", "next_attempt_at", "updated_at"])


def seed(receiver) -> dict:
    Tenant.objects.create(key=TENANT, name="Acme Incorporated Europe")
    order_type()
    EventType.objects.create(name="invoice.payment_succeeded", description="An invoice was paid.")
    EventType.objects.create(
        name="customer.subscription_trial_will_end", description="A trial ends in three days."
    )
    receiver.script("/failing", *[Reply(500)] * 10)
    receiver.script("/recovered", Reply(500), *[Reply(200)] * 10)
    receiver.script("/final", *[Reply(400)] * 10)
    failing = tenant_endpoint(
        TENANT,
        receiver.url("/failing") + LONG_URL_PATH,
        description="Order synchronisation with the warehouse_management-system",
        event_types=["order.*", "customer.subscription_trial_will_end"],
    )
    receiver.script("/failing" + LONG_URL_PATH, *[Reply(500)] * 10)
    recovered = tenant_endpoint(TENANT, receiver.url("/recovered"), description="CRM")
    final = tenant_endpoint(TENANT, receiver.url("/final"), description="Billing")
    disabled = tenant_endpoint(TENANT, "https://erp.example.com/hooks", description="ERP")
    fail_or_succeed(failing)
    fail_or_succeed(failing, parked=True)
    fail_or_succeed(recovered)
    fail_or_succeed(recovered)
    fail_or_succeed(final)
    disable_subscription(disabled, "Paused by the customer")
    publish("order.created", {"id": 7, "total": "42.00"}, tenant=TENANT)
    publish("invoice.payment_succeeded", {"invoice": "in_1"}, tenant=TENANT)
    roll_up()
    parked = failing.deliveries.filter(status=DeliveryStatus.RETRYING).order_by("-pk").first()
    failed = final.deliveries.order_by("pk").first()
    return {
        "failing": failing,
        "recovered": recovered,
        "final": final,
        "disabled": disabled,
        "parked": parked,
        "failed": failed,
    }


def portal_pages(data: dict) -> list[tuple[str, str]]:
    failing, recovered, disabled = data["failing"], data["recovered"], data["disabled"]
    return [
        ("portal-endpoints", portal_url("endpoints")),
        ("portal-endpoint-failing", portal_url("endpoint", failing.pk)),
        ("portal-endpoint-recovered", portal_url("endpoint", recovered.pk)),
        ("portal-endpoint-disabled", portal_url("endpoint", disabled.pk)),
        ("portal-endpoint-final", portal_url("endpoint", data["final"].pk)),
        ("portal-endpoint-add", portal_url("endpoint-create")),
        ("portal-endpoint-edit", portal_url("endpoint-edit", failing.pk)),
        ("portal-endpoint-disable", portal_url("endpoint-disable", recovered.pk)),
        ("portal-endpoint-delete", portal_url("endpoint-delete", recovered.pk)),
        ("portal-endpoint-rotate", portal_url("endpoint-rotate", failing.pk)),
        ("portal-endpoint-replay", portal_url("replay", failing.pk)),
        ("portal-catalog", portal_url("catalog")),
        ("portal-deliveries", portal_url("deliveries")),
        ("portal-delivery-parked", portal_url("delivery", data["parked"].pk)),
        ("portal-delivery-failed", portal_url("delivery", data["failed"].pk)),
        ("portal-verify", portal_url("verify")),
    ]


def admin_pages(data: dict) -> list[tuple[str, str]]:
    event = Event.objects.order_by("-created_at").first()
    return [
        ("admin-index", reverse("admin:index")),
        ("admin-dashboard", reverse("admin:deliveries_dashboard")),
        ("admin-subscriptions", reverse("admin:webhook_subscriptions_subscription_changelist")),
        (
            "admin-subscription",
            reverse("admin:webhook_subscriptions_subscription_change", args=[data["failing"].pk]),
        ),
        ("admin-deliveries", reverse("admin:deliveries_delivery_changelist")),
        ("admin-delivery", reverse("admin:deliveries_delivery_change", args=[data["parked"].pk])),
        ("admin-events", reverse("admin:deliveries_event_changelist")),
        ("admin-event", reverse("admin:deliveries_event_change", args=[event.pk])),
        ("admin-tenants", reverse("admin:webhook_subscriptions_tenant_changelist")),
    ]


def visit(
    page, base: str, name: str, path: str, width: int, watch: Watch, *, tables: bool
) -> list[str]:
    watch.errors.clear()
    response = page.goto(base + path)
    page.wait_for_load_state("load")
    problems = [f"{response.status} for the page"] if response.status != 200 else []
    problems += page.evaluate(LAYOUT_PROBLEMS, True)
    if not tables:
        problems = [p for p in problems if not p.startswith("table ")]
    problems += watch.errors
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"pass-{width}-{name}.png"), full_page=True)
    return [f"{name} at {width} px: {problem}" for problem in problems]


def test_every_page_holds_at_1400_and_390_px(
    live_server, monkeypatch, receiver, broker, staff_user, caplog
):
    from webhooks_portal.access import make_token

    data = seed(receiver)
    problems: list[str] = []
    with chromium(monkeypatch) as browser:
        for viewport in (WIDE, PHONE):
            width = viewport["width"]
            context = browser.new_context(viewport=viewport)
            page = context.new_page()
            page.set_default_timeout(15000)
            watch = Watch()
            watch.attach(page)
            page.goto(f"{live_server.url}/portal/access/?token={make_token(TENANT)}")
            icon_misses = len([m for m in caplog.messages if "favicon" in m])
            for name, path in portal_pages(data):
                problems += visit(page, live_server.url, name, path, width, watch, tables=True)
                if name == "portal-endpoints":
                    icon = page.get_attribute('link[rel="icon"]', "href", timeout=1000)
                    assert icon, "the portal names no favicon"
                    served = page.request.get(live_server.url + icon)
                    assert served.status == 200, icon
            # Chromium asks for /favicon.ico (outside Playwright's view) unless a page names
            # an icon: the portal's pages do. (The admin's are Django's and the host's.)
            assert len([m for m in caplog.messages if "favicon" in m]) == icon_misses
            login(page, live_server.url)
            for name, path in admin_pages(data):
                # The admin's own change lists scroll inside their box on a phone (Django's
                # responsive CSS); the page itself must not, and at 1,400 px nothing does.
                problems += visit(
                    page, live_server.url, name, path, width, watch, tables=width > 400
                )
            context.close()
    assert not problems, "\n".join(problems)


def test_a_form_with_two_bad_fields_shows_both_errors_at_once(
    live_server, monkeypatch, staff_user
):
    # Issue 28: an edit with a bad header line and an ftp:// URL showed the header error only;
    # the URL's came on the next submit. In the portal and in the admin, both come at once.
    from webhooks_portal.access import make_token

    Tenant.objects.create(key=TENANT, name="Acme")
    order_type()
    endpoint = tenant_endpoint(TENANT, "https://hooks.example.com/orders", description="Orders")
    with chromium(monkeypatch) as browser:
        page = browser.new_page(viewport=WIDE)
        page.set_default_timeout(15000)
        page.goto(f"{live_server.url}/portal/access/?token={make_token(TENANT)}")
        for where, path in (
            ("portal", portal_url("endpoint-edit", endpoint.pk)),
            (
                "admin",
                reverse("admin:webhook_subscriptions_subscription_change", args=[endpoint.pk]),
            ),
        ):
            if where == "admin":
                login(page, live_server.url)
            page.goto(live_server.url + path)
            page.fill("#id_url", "ftp://hooks.example.com/orders")
            page.fill("#id_headers", "this is not a header line")
            # The form's own save button (the portal's form also holds the preview's).
            save = "button.primary[type=submit], input[name=_save]"
            page.locator("form:has(#id_url)").locator(save).first.click()
            page.wait_for_load_state("load")
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"pass-{where}-two-errors.png"), full_page=True)
            errors = page.locator(".errorlist").all_inner_texts()
            text = " ".join(errors)
            assert "Unsupported URL scheme 'ftp'" in text, (where, errors)
            assert "write each header as 'Name: value'" in text, (where, errors)
    endpoint.refresh_from_db()
    assert endpoint.url == "https://hooks.example.com/orders"  # nothing saved
