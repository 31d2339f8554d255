"""The admin as a control room, driven in a real headless Chromium against a live server.

Walks what an operator does: open the dashboard from the index and the delivery list (screenshot
saved to artifacts/dashboard.png), read the subscription list's health columns, filter the
delivery list, open a delivery's detail, send one again, replay a subscription through the
intermediate form, and enable a disabled one then follow the replay offer.
"""

from __future__ import annotations

import datetime as dt
import os

import pytest
from django.utils import timezone

from deliveries.models import Delivery, DeliveryStatus
from tests.browser import ARTIFACTS, chromium, login, needs_chromium, run_action
from tests.factories import make_subscription
from tests.ops_helpers import make_delivery, roll_up

pytestmark = [pytest.mark.browser, needs_chromium]


@pytest.fixture
def page(live_server, monkeypatch):
    with chromium(monkeypatch) as browser:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(15000)
        yield page
        context.close()


def seed() -> dict:
    now = timezone.now()
    healthy = make_subscription("http://127.0.0.1:9/shop", description="Shop", last_success_at=now)
    failing = make_subscription(
        "http://127.0.0.1:9/crm", description="CRM", failing_since=now - dt.timedelta(minutes=20)
    )
    paused = make_subscription(
        "http://127.0.0.1:9/erp",
        description="ERP",
        is_active=False,
        disabled_at=now - dt.timedelta(minutes=40),
        disabled_reason="Endpoint answered 410 Gone.",
    )
    for minute in range(0, 60, 3):
        at = now - dt.timedelta(minutes=minute)
        make_delivery(healthy, DeliveryStatus.SUCCEEDED, created_at=at, attempts=[(200, 40)])
        if minute < 20:
            make_delivery(
                failing, DeliveryStatus.FAILED, created_at=at, attempts=[(500, 120), (None, 3000)]
            )
    for minute in (5, 10, 15):
        make_delivery(paused, DeliveryStatus.SKIPPED, created_at=now - dt.timedelta(minutes=minute))
    make_delivery(
        failing,
        DeliveryStatus.RETRYING,
        next_attempt_at=now - dt.timedelta(minutes=3),
        attempts=[(503, 50)],
    )
    return {"healthy": healthy, "failing": failing, "paused": paused}


def test_operator_walkthrough(page, live_server, staff_user, broker):
    rows = seed()
    roll_up()  # beat's minute roll-up, which the dashboard's 24 h figures read
    base = live_server.url
    login(page, base)

    # Dashboard, from the index through the delivery list.
    page.click('#content-main a[href$="/admin/deliveries/delivery/"]')
    page.click("#webhooks-dashboard-link a")
    page.wait_for_selector("svg#webhooks-minutes")
    assert page.locator("svg#webhooks-minutes rect").count() >= 20
    assert page.inner_text("#backlog-due") == "1"
    assert "CRM" in page.inner_text("#unhealthy")
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000

    # Subscription list with health columns.
    page.goto(f"{base}/admin/webhook_subscriptions/subscription/")
    headers = page.inner_text("#result_list thead").lower()
    for column in ("success 24 h", "p95 24 h", "failures in a row", "last success", "last 7 days"):
        assert column in headers
    assert page.locator("#result_list svg.webhooks-days").count() == 3
    crm_row = page.locator("#result_list tr", has_text="CRM")
    assert "0.0%" in crm_row.inner_text()
    assert "15" in crm_row.locator("td.field-failures_in_a_row").inner_text()
    assert "100.0%" in page.locator("#result_list tr", has_text="Shop").inner_text()

    # Delivery list, filtered by status from the filter sidebar.
    page.goto(f"{base}/admin/deliveries/delivery/")
    page.locator("#changelist-filter a", has_text="Failed").first.click()
    page.wait_for_url("**status__exact=failed**")
    assert page.locator("#result_list tbody tr").count() == 7

    # Delivery detail: the request as sent and every attempt's response.
    failed = Delivery.objects.filter(subscription=rows["failing"], status="failed").first()
    page.goto(f"{base}/admin/deliveries/delivery/{failed.pk}/change/")
    request_text = page.inner_text("#request-sent")
    assert request_text.startswith("POST http://127.0.0.1:9/crm")
    assert f"webhook-id: {failed.event_id}" in request_text
    assert '"type":"order.created"' in request_text
    # Each attempt's error as its one-line summary (the raw detail is behind "headers, body").
    refused = page.locator("#attempts tbody tr", has_text="Could not connect to 127.0.0.1:9")
    assert refused.count() >= 1

    # Action: send again now.
    page.goto(f"{base}/admin/deliveries/delivery/?status__exact=failed")
    run_action(page, "send_again_now", failed.pk)
    assert "1 of 1 delivery queued for another attempt." in page.inner_text(".messagelist")
    failed.refresh_from_db()
    assert failed.status == DeliveryStatus.RETRYING

    # Action: replay a subscription through the intermediate form.
    page.goto(f"{base}/admin/webhook_subscriptions/subscription/")
    run_action(page, "replay_selected", rows["failing"].pk)
    page.wait_for_selector("#replay-form")
    # The form proposes the last hour: one click replays it.
    since = dt.datetime.fromisoformat(page.input_value("#id_since")).replace(tzinfo=dt.UTC)
    assert abs((timezone.now() - since).total_seconds() - 3600) < 120
    page.click('input[name="replay"]')
    assert "6 deliveries queued for replay." in page.inner_text(".messagelist")

    # Action: enable the disabled subscription, then follow the replay offer.
    run_action(page, "enable_selected", rows["paused"].pk)
    assert "1 subscription enabled." in page.inner_text(".messagelist")
    page.click("a.replay-offer")
    page.wait_for_selector("#replay-form")
    assert page.input_value("#id_since") != ""
    assert page.is_checked('input[name="status"][value="skipped"]')
    page.click('input[name="replay"]')
    assert "3 deliveries queued for replay." in page.inner_text(".messagelist")
    assert os.path.exists(shot)
