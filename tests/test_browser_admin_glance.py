"""The admin at a glance, in a real headless Chromium at 1400x900, with the
operational notices: the subscription list with health on screen, a delivery's attempts table
and "Send again now", disabling with its confirmation and report, the dashboard's retries, the
notices on a subscription's page and their replay link. Screenshots: artifacts/admin-*.png."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from deliveries.models import Delivery, DeliveryAttempt, DeliveryStatus
from deliveries.services import notices
from tests.browser import ARTIFACTS, chromium, login, needs_chromium, run_action
from tests.factories import make_subscription
from tests.ops_helpers import make_delivery

pytestmark = [pytest.mark.browser, needs_chromium]

WIDTH, HEIGHT = 1400, 900


def seed() -> dict:
    now = timezone.now()
    shop = make_subscription(
        "https://shop.example.com/webhooks/orders", description="Shop", last_success_at=now
    )
    crm = make_subscription(
        "https://hooks.crm-provider.example.net/v2/incoming/acme-corporation/orders",
        description="CRM (Acme)",
        failing_since=now - dt.timedelta(minutes=20),
    )
    make_subscription("https://erp.example.org/hook")
    for minute in range(0, 60, 4):
        at = now - dt.timedelta(minutes=minute)
        make_delivery(shop, DeliveryStatus.SUCCEEDED, created_at=at, attempts=[(200, 40)])
    for minute in range(0, 20, 4):
        make_delivery(
            crm,
            DeliveryStatus.FAILED,
            created_at=now - dt.timedelta(minutes=minute),
            attempts=[(500, 120), (None, 3000)],
        )
    # Waiting to retry: one due now, one within the countdown cap, two parked for later.
    for offset in (-5, 20, 1800, 7200):
        make_delivery(
            crm,
            DeliveryStatus.RETRYING,
            next_attempt_at=now + dt.timedelta(seconds=offset),
            attempts=[(503, 50)],
        )
    # A delivery whose attempts came seconds apart, with real-looking answers.
    detail = make_delivery(crm, DeliveryStatus.FAILED, created_at=now - dt.timedelta(minutes=1))
    first = now.replace(microsecond=0) - dt.timedelta(seconds=50)
    answers = [
        (500, 230, "http_status", '{"error":"database unavailable","retry":true}', ""),
        (502, 95, "http_status", "<html><body><h1>502 Bad Gateway</h1></body></html>", ""),
        (None, 3001, "timeout", "", "Read timed out. (read timeout=3.0)"),
    ]
    for number, (status, ms, kind, body, error) in enumerate(answers, start=1):
        DeliveryAttempt.objects.create(
            delivery=detail,
            number=number,
            started_at=first + dt.timedelta(seconds=3 * number),
            duration_ms=ms,
            response_status=status,
            response_body=body,
            response_headers={"Content-Type": "application/json"} if body else {},
            request_headers={"webhook-id": str(detail.event_id), "webhook-timestamp": "1"},
            error_kind=kind,
            error=error,
        )
    Delivery.objects.filter(pk=detail.pk).update(attempts=3, last_status_code=502)
    notice = notices.endpoint_failing(crm, crm.failing_since)
    return {"shop": shop, "crm": crm, "detail": detail, "notice": notice}


def shot(page, name: str, *, full_page: bool = False) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"admin-{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    assert path.stat().st_size > 10_000


def test_the_admin_reads_at_a_glance_at_1400_px(live_server, staff_user, broker, monkeypatch):
    rows = seed()
    base = live_server.url
    with chromium(monkeypatch) as browser:
        context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT})
        page = context.new_page()
        page.set_default_timeout(15000)
        login(page, base)

        # The subscription list: every health column is on screen, the URL shown once.
        page.goto(f"{base}/admin/webhook_subscriptions/subscription/")
        for column in ("success_rate", "p95_latency", "failures_in_a_row", "last_success", "days"):
            box = page.locator(f"#result_list thead th.column-{column}").bounding_box()
            assert box is not None and box["x"] + box["width"] <= WIDTH, column
        crm = page.locator("#result_list tbody tr", has_text="CRM (Acme)")
        assert crm.inner_text().count("hooks.crm-provider") == 1
        assert crm.locator("td.field-failures_in_a_row").inner_text() == "17"  # 5x2 + 4 + 3
        shot(page, "subscriptions")

        # A delivery: attempts in one table, seconds apart and readable; then send it again.
        detail = rows["detail"]
        page.goto(f"{base}/admin/deliveries/delivery/{detail.pk}/change/")
        table = page.locator("#attempts tbody tr")
        assert table.count() == 3
        times = [table.nth(i).locator("td.attempt-time").inner_text() for i in range(3)]
        assert len(set(times)) == 3 and all(t.count(":") == 2 for t in times), times
        assert "database unavailable" in table.nth(0).inner_text()
        assert "No response within 3 s" in table.nth(2).inner_text()  # deliveries.summaries
        row_height = table.nth(0).bounding_box()["height"]
        assert row_height < 80, row_height  # a line, not a 370 px block
        shot(page, "delivery", full_page=True)
        page.locator("#attempt-2 details summary").click()
        assert page.locator("#attempt-2 details pre").first.is_visible()
        shot(page, "delivery-details", full_page=True)
        page.click("#send-again-now")
        page.wait_for_selector(".messagelist")
        assert "Attempt 4 queued" in page.inner_text(".messagelist")
        detail.refresh_from_db()
        assert detail.status == DeliveryStatus.RETRYING
        shot(page, "delivery-sent-again")

        # The dashboard counts the retries where they wait.
        page.goto(f"{base}/admin/deliveries/delivery/dashboard/")
        assert page.inner_text("#retries-total") == "5"
        assert page.inner_text("#retries-due") == "2"  # the seeded one and the one sent again
        assert page.inner_text("#retries-soon") == "1"
        assert page.inner_text("#retries-parked") == "2"
        page.locator("#retries").scroll_into_view_if_needed()
        shot(page, "dashboard")

        # The failing subscription's page: its notice, and the replay it offers.
        crm_sub = rows["crm"]
        page.goto(f"{base}/admin/webhook_subscriptions/subscription/{crm_sub.pk}/change/")
        panel = page.locator("#notices")
        assert "Failing" in panel.inner_text() and "(now)" in panel.inner_text()
        panel.scroll_into_view_if_needed()
        shot(page, "subscription-notices")
        panel.locator("a.notice-replay").first.click()
        page.wait_for_selector("#replay-form")
        assert page.is_checked('input[name="status"][value="retrying"]')
        assert page.is_checked('input[name="status"][value="failed"]')
        shot(page, "replay-with-retrying")
        page.click('input[name="replay"]')
        assert "queued for replay" in page.inner_text(".messagelist")

        # Disabling asks first, with what waits, then reports what it discarded.
        page.goto(f"{base}/admin/webhook_subscriptions/subscription/")
        run_action(page, "disable_selected", crm_sub.pk)
        page.wait_for_selector("#disable-form")
        consequence = page.inner_text(".disable-consequence")
        assert "will be discarded" in consequence, consequence
        waiting = Delivery.objects.filter(
            subscription=crm_sub, status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING]
        ).count()
        assert f"{waiting} deliveries waiting to be sent" in consequence
        page.fill("#id_reason", "Paused while Acme migrates their CRM")
        shot(page, "disable-confirmation")
        page.click('#disable-form input[type="submit"]')
        page.wait_for_selector(".messagelist")
        report = page.inner_text(".messagelist")
        assert "1 subscription disabled." in report
        assert f"{waiting} waiting deliveries were discarded" in report
        shot(page, "disabled-report")

        # The notice list: failing, then disabled, for the same incident.
        page.goto(f"{base}/admin/deliveries/endpointnotice/")
        listing = page.inner_text("#result_list")
        assert "Failing" in listing and "Disabled" in listing
        shot(page, "notices")
        context.close()
