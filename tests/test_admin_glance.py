"""The admin read at a glance, through Django's test client: the subscription
list leads with health and shows each URL once, a delivery's attempts are one compact table to
the second, "Send again now" on the delivery page, disabling asks first and reports what it
discarded, the dashboard counts retries where they wait, and replay can take `retrying`."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from deliveries import dispatch
from deliveries.models import Delivery, DeliveryAttempt, DeliveryStatus
from deliveries.services import replay
from subscriptions.admin import short_url
from subscriptions.models import Subscription
from tests.factories import make_subscription
from tests.ops_helpers import make_delivery, queue_length

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:webhook_subscriptions_subscription_changelist"


def header_names(html: str) -> list[str]:
    head = html.split("<thead>", 1)[1].split("</thead>", 1)[0]
    cells = re.findall(r'<th scope="col"[^>]*class="[^"]*column-([\w-]+)', head)
    return cells


# --- Subscription list ------------------------------------------------------------------------


def test_the_subscription_list_leads_with_health_and_shows_each_url_once(admin_client):
    named = make_subscription("http://127.0.0.1:9/named-endpoint", description="Billing")
    bare = make_subscription("http://127.0.0.1:9/bare-endpoint")

    html = admin_client.get(reverse(CHANGELIST)).content.decode()

    columns = header_names(html)
    assert columns[:7] == [
        "endpoint",
        "status",
        "success_rate",
        "p95_latency",
        "failures_in_a_row",
        "last_success",
        "days",
    ], columns
    # Tenant, owner and date are no columns (the list fits at 1,400 px beside the sidebar):
    # the tenant is a line of the endpoint's cell.
    assert not {"tenant", "owner", "created_at"} & set(columns), columns
    assert html.count("tenant default") == 2
    # Each URL once (the cell's text, breakable after '.', '/', '-' and '_'; its title
    # attribute holds the same URL for long ones).
    assert html.count(">http://<wbr>127.<wbr>0.<wbr>0.<wbr>1:9/<wbr>named-<wbr>endpoint<") == 1
    assert html.count(">http://<wbr>127.<wbr>0.<wbr>0.<wbr>1:9/<wbr>bare-<wbr>endpoint<") == 1
    assert "<strong>Billing</strong>" in html
    assert named.pk and bare.pk


def test_long_urls_are_cut_in_the_middle_keeping_host_and_last_segment():
    url = "https://hooks.example-customer-with-a-long-name.com/webhooks/v2/incoming/orders"
    short = short_url(url, 40)
    assert len(short) == 40
    assert short.startswith("https://hooks.example") and short.endswith("orders")
    assert "…" in short
    assert short_url("https://a.example/h", 40) == "https://a.example/h"


# --- Delivery page: attempts table and "Send again now" -----------------------------------------


def attempt(delivery: Delivery, number: int, started: dt.datetime, **fields) -> DeliveryAttempt:
    return DeliveryAttempt.objects.create(
        delivery=delivery, number=number, started_at=started, **fields
    )


def test_attempts_are_one_compact_table_timed_to_the_second(admin_client):
    sub = make_subscription("http://127.0.0.1:9/table")
    delivery = make_delivery(sub, DeliveryStatus.RETRYING)
    minute = timezone.now().replace(second=10, microsecond=0)
    # Two attempts seconds apart in the same minute: they must not read the same.
    attempt(
        delivery,
        1,
        minute,
        duration_ms=120,
        response_status=500,
        error_kind="http_status",
        response_body="Internal   Server\nError: database is down " + "x" * 300,
        response_headers={"Content-Type": "text/plain"},
        request_headers={"webhook-id": "msg_1"},
    )
    attempt(
        delivery,
        2,
        minute + dt.timedelta(seconds=7),
        duration_ms=3000,
        error_kind="timeout",
        error="Read timed out after 3 s",
    )

    html = admin_client.get(
        reverse("admin:deliveries_delivery_change", args=[delivery.pk])
    ).content.decode()

    assert "inline-related" not in html  # no stacked inline blocks any more
    table = html.split('id="attempts"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r'<tr class="attempt-\w+" id="attempt-(\d)">(.*?)</tr>', table, re.S)
    assert [number for number, _ in rows] == ["1", "2"]
    first, second = rows[0][1], rows[1][1]
    local = timezone.localtime(minute)
    assert local.strftime("%Y-%m-%d %H:%M:10") in first
    assert (local + dt.timedelta(seconds=7)).strftime("%Y-%m-%d %H:%M:17") in second
    assert "500" in first and "120 ms" in first and "Non-2xx answer" in first
    # The answer's excerpt on one line, cut; the whole body is behind the disclosure.
    assert "Internal Server Error: database is down xxx" in first
    assert "x" * 300 not in first.split("<details>")[0]
    assert "x" * 300 in first
    assert "Timed out" in second and "3000 ms" in second
    assert "Read timed out after 3 s" in second
    assert "2 attempts" in html


def test_send_again_now_on_the_delivery_page(admin_client, broker):
    sub = make_subscription("http://127.0.0.1:9/again")
    failed = make_delivery(sub, DeliveryStatus.FAILED, attempts=[(500, 1), (500, 1)])
    page = reverse("admin:deliveries_delivery_change", args=[failed.pk])
    button = reverse("admin:deliveries_delivery_send_again", args=[failed.pk])
    retry_queue_before = queue_length("webhooks.retry")

    html = admin_client.get(page).content.decode()
    assert f'action="{button}"' in html and 'id="send-again-now"' in html
    assert admin_client.get(button).status_code == 405  # only a POST sends

    response = admin_client.post(button, follow=True)

    assert response.redirect_chain[-1][0] == page
    assert "Attempt 3 queued" in response.content.decode()
    failed.refresh_from_db()
    assert failed.status == DeliveryStatus.RETRYING and failed.attempts == 2
    assert queue_length("webhooks.retry") == retry_queue_before + 1


def test_send_again_now_says_why_it_cannot(admin_client, broker):
    sub = make_subscription("http://127.0.0.1:9/off", is_active=False)
    failed = make_delivery(sub, DeliveryStatus.FAILED, attempts=[(500, 1)])

    response = admin_client.post(
        reverse("admin:deliveries_delivery_send_again", args=[failed.pk]), follow=True
    )

    assert "The subscription is disabled; enable it first." in response.content.decode()
    failed.refresh_from_db()
    assert failed.status == DeliveryStatus.FAILED


def test_send_again_now_needs_the_change_permission(client, django_user_model):
    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_delivery"))
    client.force_login(viewer)
    failed = make_delivery(make_subscription("http://127.0.0.1:9/p"), DeliveryStatus.FAILED)

    page = client.get(reverse("admin:deliveries_delivery_change", args=[failed.pk]))
    response = client.post(reverse("admin:deliveries_delivery_send_again", args=[failed.pk]))

    assert page.status_code == 200 and 'id="send-again-now"' not in page.content.decode()
    assert response.status_code == 403
    failed.refresh_from_db()
    assert failed.status == DeliveryStatus.FAILED


# --- Disabling asks first, then reports what it discarded ---------------------------------------


def waiting_rows(sub: Subscription) -> list[Delivery]:
    now = timezone.now()
    return [
        make_delivery(sub, DeliveryStatus.PENDING, next_attempt_at=now),
        make_delivery(sub, DeliveryStatus.RETRYING, next_attempt_at=now + dt.timedelta(hours=1)),
        make_delivery(sub, DeliveryStatus.RETRYING, next_attempt_at=now + dt.timedelta(hours=2)),
    ]


def test_disabling_asks_for_confirmation_and_changes_nothing_until_confirmed(admin_client):
    sub = make_subscription("http://127.0.0.1:9/ask", description="Orders")
    waiting_rows(sub)
    idle = make_subscription("http://127.0.0.1:9/idle", description="Idle")
    gone = make_subscription("http://127.0.0.1:9/gone", is_active=False)

    response = admin_client.post(
        reverse(CHANGELIST),
        {"action": "disable_selected", "_selected_action": [sub.pk, idle.pk, gone.pk]},
    )

    html = response.content.decode()
    assert response.status_code == 200 and 'id="disable-form"' in html
    assert "Disable these 2 subscriptions?" in html
    assert "3 deliveries waiting to be sent (1 pending, 2 retrying) will be discarded" in html, html
    assert "Nothing is waiting to be sent; nothing will be discarded." in html
    assert "1 selected subscription is already disabled" in html
    for pk in (sub.pk, idle.pk, gone.pk):
        assert f'name="_selected_action" value="{pk}"' in html
    sub.refresh_from_db()
    assert sub.is_active
    assert Delivery.objects.filter(subscription=sub, status=DeliveryStatus.DISCARDED).count() == 0


def test_confirmed_disabling_reports_what_it_discarded(
    admin_client, django_capture_on_commit_callbacks
):
    sub = make_subscription("http://127.0.0.1:9/confirm")
    waiting = waiting_rows(sub)
    done = make_delivery(sub, DeliveryStatus.FAILED)

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse(CHANGELIST),
            {
                "action": "disable_selected",
                "_selected_action": [sub.pk],
                "confirm": "yes",
                "reason": "Customer asked us to pause it",
            },
            follow=True,
        )

    html = response.content.decode()
    assert "1 subscription disabled." in html
    assert "3 waiting deliveries were discarded" in html
    sub.refresh_from_db()
    assert not sub.is_active and sub.disabled_reason == "Customer asked us to pause it"
    for delivery in waiting:
        delivery.refresh_from_db()
        assert delivery.status == DeliveryStatus.DISCARDED
        assert delivery.last_error == "Discarded: Customer asked us to pause it"
    done.refresh_from_db()
    assert done.status == DeliveryStatus.FAILED


@pytest.mark.django_db(transaction=True)
def test_the_discard_count_is_right_when_the_signal_ran_first(client, staff_user):
    # In autocommit the `subscription_disabled` receiver discards at once, before the admin
    # reports: the report still counts what the disabling discarded.
    client.force_login(staff_user)
    sub = make_subscription("http://127.0.0.1:9/autocommit")
    waiting_rows(sub)

    response = client.post(
        reverse(CHANGELIST),
        {"action": "disable_selected", "_selected_action": [sub.pk], "confirm": "yes"},
        follow=True,
    )

    assert "3 waiting deliveries were discarded" in response.content.decode()
    assert Delivery.objects.filter(status=DeliveryStatus.DISCARDED).count() == 3


# --- Dashboard: retries where they wait ----------------------------------------------------------


def test_the_dashboard_counts_retries_in_the_database_and_the_queue(admin_client, broker):
    sub = make_subscription("http://127.0.0.1:9/retries")
    now = timezone.now()
    due = make_delivery(sub, DeliveryStatus.RETRYING, next_attempt_at=now - dt.timedelta(seconds=5))
    make_delivery(sub, DeliveryStatus.RETRYING, next_attempt_at=now + dt.timedelta(seconds=20))
    make_delivery(sub, DeliveryStatus.RETRYING, next_attempt_at=now + dt.timedelta(hours=2))
    make_delivery(sub, DeliveryStatus.FAILED)
    # The due one's message waits in the retry queue (attempt 2 goes there).
    dispatch.enqueue_attempts([(due.pk, 2)])

    html = admin_client.get(reverse("admin:deliveries_dashboard")).content.decode()

    figures = {
        name: int(value)
        for name, value in re.findall(r'id="retries-(\w+)">(?:<strong>)?(\d+)', html)
    }
    assert figures == {"total": 3, "due": 1, "soon": 1, "parked": 1, "queued": 1}, figures


def test_webhook_stats_prints_where_retries_wait(broker, capsys):
    sub = make_subscription("http://127.0.0.1:9/stats")
    make_delivery(
        sub, DeliveryStatus.RETRYING, next_attempt_at=timezone.now() + dt.timedelta(hours=1)
    )

    call_command("webhook_stats")

    assert (
        "retries: retrying=1 (due now=0, soon=0, parked=1) retry queue=0" in capsys.readouterr().out
    )


# --- Replay can include `retrying` ---------------------------------------------------------------


def test_replaying_retrying_deliveries_sends_them_now(broker):
    sub = make_subscription("http://127.0.0.1:9/backoff")
    now = timezone.now()
    later = now + dt.timedelta(hours=5)
    parked = make_delivery(
        sub, DeliveryStatus.RETRYING, next_attempt_at=later, attempts=[(500, 1), (500, 1)]
    )
    failed = make_delivery(sub, DeliveryStatus.FAILED, attempts=[(500, 1)])
    retry_queue_before = queue_length("webhooks.retry")

    request = replay.build_request(sub, now - dt.timedelta(hours=1), statuses=["retrying"])
    assert replay.run_replay(request) == 1

    parked.refresh_from_db()
    assert parked.status == DeliveryStatus.RETRYING and parked.next_attempt_at <= timezone.now()
    assert parked.attempts == 2  # the attempt sent now is the third, the one that was scheduled
    assert queue_length("webhooks.retry") == retry_queue_before + 1
    failed.refresh_from_db()
    assert failed.status == DeliveryStatus.FAILED  # not asked for


def test_the_api_replays_retrying_deliveries_when_asked(staff_client, broker):
    sub = make_subscription("http://127.0.0.1:9/api-backoff")
    make_delivery(
        sub, DeliveryStatus.RETRYING, next_attempt_at=timezone.now() + dt.timedelta(hours=1)
    )
    make_delivery(sub, DeliveryStatus.FAILED)
    since = (timezone.now() - dt.timedelta(hours=1)).isoformat()

    default = staff_client.post(
        f"/api/subscriptions/{sub.pk}/replay/", {"since": since}, format="json"
    )
    both = staff_client.post(
        f"/api/subscriptions/{sub.pk}/replay/",
        {"since": since, "status": ["failed", "retrying"]},
        format="json",
    )
    bad = staff_client.post(
        f"/api/subscriptions/{sub.pk}/replay/",
        {"since": since, "status": ["sending"]},
        format="json",
    )

    assert default.status_code == 202 and default.json()["queued"] == 1  # failed only
    assert both.status_code == 202, both.content
    assert both.json()["queued"] == 2 and both.json()["status"] == ["failed", "retrying"]
    assert bad.status_code == 400 and "status" in bad.json()


def test_the_admin_replay_form_offers_retrying(admin_client, broker):
    sub = make_subscription("http://127.0.0.1:9/form-backoff")
    make_delivery(
        sub, DeliveryStatus.RETRYING, next_attempt_at=timezone.now() + dt.timedelta(hours=1)
    )
    form_url = reverse("admin:webhook_subscriptions_subscription_replay") + f"?ids={sub.pk}"

    page = admin_client.get(form_url).content.decode()
    assert 'name="status" value="retrying"' in page
    assert 'value="retrying" checked' not in page  # offered, not chosen by default

    since = (timezone.now() - dt.timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
    done = admin_client.post(form_url, {"since": since, "status": ["retrying"]}, follow=True)
    assert "1 delivery queued for replay." in done.content.decode()
