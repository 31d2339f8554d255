"""The admin as a control room, through Django's test client: health columns, delivery detail,
the dashboard, and the effect of every action (send again, replay, enable with replay offer)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from deliveries import dispatch
from deliveries.models import Delivery, DeliveryStatus
from deliveries.payloads import build_body
from deliveries.services import health
from subscriptions.models import Subscription
from tests.factories import make_subscription
from tests.ops_helpers import make_delivery, queue_length, roll_up

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_(client, staff_user):
    client.force_login(staff_user)
    return client


def test_health_figures_for_a_page_in_few_queries(django_assert_max_num_queries):
    now = timezone.now()
    good = make_subscription("http://127.0.0.1:9/good", last_success_at=now)
    bad = make_subscription("http://127.0.0.1:9/bad", failing_since=now - dt.timedelta(minutes=5))
    # good: 19 fast successes and one slow one -> p95 bucket 100 ms, 100 %.
    for _ in range(19):
        make_delivery(good, DeliveryStatus.SUCCEEDED, attempts=[(200, 40)])
    make_delivery(good, DeliveryStatus.SUCCEEDED, attempts=[(200, 900)])
    # bad: an old success before its failing run, then 3 failed attempts in a row.
    make_delivery(
        bad, DeliveryStatus.SUCCEEDED, created_at=now - dt.timedelta(hours=3), attempts=[(200, 10)]
    )
    make_delivery(
        bad,
        DeliveryStatus.FAILED,
        created_at=now - dt.timedelta(minutes=4),
        attempts=[(500, 20), (None, 3000), (503, 20)],
    )
    # Outside the 24 h window: counted in the 7-day chart only.
    make_delivery(
        bad, DeliveryStatus.FAILED, created_at=now - dt.timedelta(days=3), attempts=[(500, 5)]
    )
    roll_up()

    with django_assert_max_num_queries(4):
        figures = health.subscription_health([good, bad], now)

    assert figures[good.pk].attempts_24h == 20
    assert figures[good.pk].success_rate == 1.0
    assert figures[good.pk].p95_ms == 50
    assert figures[good.pk].failures_in_a_row == 0
    assert figures[bad.pk].attempts_24h == 4
    assert figures[bad.pk].success_rate == 0.25
    assert figures[bad.pk].failures_in_a_row == 3
    assert sum(d.failed for d in figures[bad.pk].days) == 4
    assert sum(d.succeeded for d in figures[bad.pk].days) == 1
    assert len(figures[bad.pk].days) == 7


def test_subscription_changelist_shows_health_columns(admin_client_, django_assert_max_num_queries):
    sub = make_subscription("http://127.0.0.1:9/hook", last_success_at=timezone.now())
    make_delivery(sub, DeliveryStatus.SUCCEEDED, attempts=[(200, 30)])
    make_delivery(sub, DeliveryStatus.FAILED, attempts=[(500, 30)])
    for i in range(5):
        make_subscription(f"http://127.0.0.1:9/other{i}")
    roll_up()

    url = reverse("admin:webhook_subscriptions_subscription_changelist")
    response = admin_client_.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    for header in ("success 24 h", "p95 24 h", "failures in a row", "last success", "last 7 days"):
        assert header in html.lower() or header.title() in html
    assert "50.0%" in html
    assert "≤ 50 ms" in html
    assert html.count('class="webhooks-days"') == 6  # one chart per row
    # Not one query per row: 6 rows cost the same as 1 (a bound, not an exact count).
    with django_assert_max_num_queries(16):
        admin_client_.get(url)


def test_delivery_detail_shows_request_sent_and_every_response(admin_client_):
    sub = make_subscription("http://127.0.0.1:9/detail", headers={"Authorization": "Bearer x"})
    delivery = make_delivery(
        sub, DeliveryStatus.FAILED, attempts=[(500, 12), (502, 13)], data={"order": 7}
    )
    response = admin_client_.get(reverse("admin:deliveries_delivery_change", args=[delivery.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "POST http://127.0.0.1:9/detail" in html
    assert f"webhook-id: {delivery.event_id}" in html
    assert "authorization: [redacted]" in html
    body = build_body(delivery.event, sub.payload_format).decode()
    assert body.replace('"', "&quot;") in html
    assert "Bearer x" not in html
    assert html.count("nope") >= 2  # both attempts' response bodies
    assert "502" in html and "500" in html


def test_delivery_changelist_filters_by_status(admin_client_):
    sub = make_subscription("http://127.0.0.1:9/f")
    failed = make_delivery(sub, DeliveryStatus.FAILED)
    ok = make_delivery(sub, DeliveryStatus.SUCCEEDED)
    url = reverse("admin:deliveries_delivery_changelist")
    html = admin_client_.get(url, {"status__exact": "failed"}).content.decode()
    assert f"/delivery/{failed.pk}/change/" in html
    assert f"/delivery/{ok.pk}/change/" not in html


def test_send_again_now_reopens_and_enqueues_the_next_attempt(admin_client_, broker):
    sub = make_subscription("http://127.0.0.1:9/again")
    failed = make_delivery(sub, DeliveryStatus.FAILED, attempts=[(500, 1), (500, 1)])
    sending = make_delivery(sub, DeliveryStatus.SENDING, attempts=[(500, 1)])
    retry_queue_before = queue_length("webhooks.retry")

    response = admin_client_.post(
        reverse("admin:deliveries_delivery_changelist"),
        {"action": "send_again_now", "_selected_action": [failed.pk, sending.pk]},
        follow=True,
    )

    assert "1 of 2 deliveries queued for another attempt." in response.content.decode()
    failed.refresh_from_db()
    sending.refresh_from_db()
    assert failed.status == DeliveryStatus.RETRYING
    assert failed.attempts == 2  # the claim of attempt 3 expects 2 done
    assert sending.status == DeliveryStatus.SENDING
    assert queue_length("webhooks.retry") == retry_queue_before + 1


def test_dashboard_linked_from_the_delivery_list_and_shows_backlog(admin_client_):
    sub = make_subscription("http://127.0.0.1:9/dash")
    make_delivery(sub, DeliveryStatus.FAILED, attempts=[(500, 5)])
    make_delivery(sub, DeliveryStatus.SUCCEEDED, attempts=[(200, 5)])
    Delivery.objects.filter(pk=make_delivery(sub, DeliveryStatus.RETRYING).pk).update(
        next_attempt_at=timezone.now() - dt.timedelta(minutes=2)
    )
    roll_up()
    index = admin_client_.get(reverse("admin:index")).content.decode()
    deliveries = reverse("admin:deliveries_delivery_changelist")
    assert deliveries in index
    listing = admin_client_.get(deliveries).content.decode()
    dashboard_url = reverse("admin:deliveries_dashboard")
    assert f'id="webhooks-dashboard-link"><a href="{dashboard_url}"' in listing

    html = admin_client_.get(dashboard_url).content.decode()
    assert '<svg id="webhooks-minutes"' in html
    assert re.search(r'id="backlog-due">1<', html)
    oldest = int(re.search(r'id="backlog-oldest">(\d+) s', html).group(1))
    assert 110 <= oldest <= 200
    assert "http://127.0.0.1:9/dash" in html  # among the unhealthiest
    # The 24 h figures say how far they are counted (the roll-up's mark).
    assert re.search(r'id="counted-up-to">Attempts counted up to \d{4}-\d\d-\d\d', html)


def test_dashboard_needs_staff(client, django_user_model):
    user = django_user_model.objects.create_user("u", password="pw")
    client.force_login(user)
    response = client.get(reverse("admin:deliveries_dashboard"))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_replay_action_asks_for_a_range_then_queues(admin_client_, broker):
    sub = make_subscription("http://127.0.0.1:9/replay")
    # Too old for the range asked below: not counted.
    make_delivery(sub, DeliveryStatus.FAILED, created_at=timezone.now() - dt.timedelta(hours=5))
    make_delivery(sub, DeliveryStatus.FAILED)
    make_delivery(sub, DeliveryStatus.DISCARDED)
    make_delivery(sub, DeliveryStatus.SUCCEEDED)
    maintenance_before = queue_length("webhooks.maintenance")

    changelist = reverse("admin:webhook_subscriptions_subscription_changelist")
    response = admin_client_.post(
        changelist, {"action": "replay_selected", "_selected_action": [sub.pk]}
    )
    assert response.status_code == 302
    form_url = response["Location"]
    page = admin_client_.get(form_url).content.decode()
    assert 'name="since"' in page and "http://127.0.0.1:9/replay" in page

    # Bad input: a validation message, nothing queued.
    bad = admin_client_.post(form_url, {"since": "yesterday-ish", "status": ["failed"]})
    assert bad.status_code == 200 and "errorlist" in bad.content.decode()
    assert queue_length("webhooks.maintenance") == maintenance_before

    since = (timezone.now() - dt.timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
    done = admin_client_.post(
        form_url, {"since": since, "status": ["failed", "discarded"]}, follow=True
    )
    assert "2 deliveries queued for replay." in done.content.decode()
    assert queue_length("webhooks.maintenance") == maintenance_before + 1


def test_enable_action_offers_replay_of_what_was_missed(admin_client_, broker):
    now = timezone.now()
    failing_since, disabled_at = now - dt.timedelta(minutes=45), now - dt.timedelta(minutes=30)
    sub = make_subscription(
        "http://127.0.0.1:9/back",
        is_active=False,
        disabled_at=disabled_at,
        failing_since=failing_since,
        disabled_reason="dead",
    )

    def row(status, created, finished):
        delivery = make_delivery(sub, status, created_at=now - dt.timedelta(minutes=created))
        Delivery.objects.filter(pk=delivery.pk).update(
            updated_at=now - dt.timedelta(minutes=finished)
        )

    row("failed", 180, 179)  # an old failure, before the outage: not offered
    row("failed", 50, 40)  # failed during the failing run
    row("discarded", 35, 30)  # waiting when it was disabled
    for minutes in (20, 10, 5):  # published while disabled
        row("skipped", minutes, minutes)

    changelist = reverse("admin:webhook_subscriptions_subscription_changelist")
    response = admin_client_.post(
        changelist, {"action": "enable_selected", "_selected_action": [sub.pk]}, follow=True
    )
    html = response.content.decode()
    assert "1 subscription enabled." in html
    assert "has 5 undelivered events from its outage." in html
    sub.refresh_from_db()
    assert sub.is_active and sub.disabled_at is None
    offer = re.search(r'class="replay-offer" href="([^"]+)"', html).group(1).replace("&amp;", "&")

    form = admin_client_.get(offer).content.decode()
    since = (now - dt.timedelta(minutes=50)).strftime("%Y-%m-%d %H:%M:%S")
    assert f'value="{since}"' in form
    for status in ("skipped", "discarded", "failed"):
        assert re.search(rf'value="{status}"[^>]*checked', form)
    done = admin_client_.post(
        offer, {"since": since, "status": ["skipped", "discarded", "failed"]}, follow=True
    )
    assert "5 deliveries queued for replay." in done.content.decode()


def test_enable_without_anything_missed_offers_nothing(admin_client_):
    sub = make_subscription(
        "http://127.0.0.1:9/quiet", is_active=False, disabled_at=timezone.now(), disabled_reason="x"
    )
    changelist = reverse("admin:webhook_subscriptions_subscription_changelist")
    html = admin_client_.post(
        changelist, {"action": "enable_selected", "_selected_action": [sub.pk]}, follow=True
    ).content.decode()
    assert "1 subscription enabled." in html and "replay-offer" not in html


def test_disable_action_goes_through_the_service(admin_client_, django_capture_on_commit_callbacks):
    sub = make_subscription("http://127.0.0.1:9/off")
    waiting = make_delivery(sub, DeliveryStatus.RETRYING, next_attempt_at=timezone.now())
    changelist = reverse("admin:webhook_subscriptions_subscription_changelist")
    with django_capture_on_commit_callbacks(execute=True):
        admin_client_.post(
            changelist,
            {"action": "disable_selected", "_selected_action": [sub.pk], "confirm": "yes"},
        )
    sub.refresh_from_db()
    waiting.refresh_from_db()
    assert not sub.is_active and "admin" in sub.disabled_reason
    assert waiting.status == DeliveryStatus.DISCARDED  # the signal ran


def test_is_active_is_read_only_on_the_change_form(admin_client_):
    sub = make_subscription("http://127.0.0.1:9/ro")
    html = admin_client_.get(
        reverse("admin:webhook_subscriptions_subscription_change", args=[sub.pk])
    ).content.decode()
    assert 'name="is_active"' not in html
    assert "replay-link" in html
    assert Subscription.objects.get(pk=sub.pk).is_active


def test_dashboard_renders_with_the_broker_unreachable(admin_client_, broker):
    from tests.procs import free_port
    from webhooks_project.celery import app

    sub = make_subscription("http://127.0.0.1:9/q")
    make_delivery(sub, DeliveryStatus.FAILED)
    assert dispatch.queue_lengths()["webhooks"] == 0  # reachable: a number
    original = app.conf.broker_url
    app.conf.broker_url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    try:
        assert set(dispatch.queue_lengths().values()) == {None}
        html = admin_client_.get(reverse("admin:deliveries_dashboard")).content.decode()
    finally:
        app.conf.broker_url = original
    assert html.count("unreachable") == 4  # three queues, and the retry queue's line


def test_the_pipeline_extends_the_subscription_admin_without_replacing_it():
    from django.contrib import admin

    import deliveries.admin  # noqa: F401 - imported: nothing global changes
    from subscriptions.admin import SubscriptionAdmin

    registered = admin.site.get_model_admin(Subscription)
    assert type(registered) is SubscriptionAdmin  # the registry app's own class
    # The one thing set on the site, and only because the host set nothing there: the index
    # template, which extends the host's own "admin/index.html" (the dashboard's link on top).
    assert admin.site.index_template == "deliveries/admin/index.html"
    names = [getattr(action, "__name__", action) for action in registered.actions]
    assert names[:3] == ["rotate_secrets", "enable_selected", "disable_selected"]
    assert {"send_test_events", "replay_selected"} <= set(names)


def test_the_pipeline_extends_the_tenant_admin_without_replacing_it(admin_client_):
    from django.contrib import admin

    import deliveries.admin  # noqa: F401 - imported: nothing global changes
    from subscriptions.admin import TenantAdmin
    from subscriptions.models import Tenant

    registered = admin.site.get_model_admin(Tenant)
    assert type(registered) is TenantAdmin  # the registry app's own class
    make_subscription("http://127.0.0.1:9/t", tenant="org_t")
    listing = admin_client_.get(
        reverse("admin:webhook_subscriptions_tenant_changelist")
    ).content.decode()
    # The registry's own columns, then the pipeline's figures through the extension hook.
    assert "limits (subscriptions / in flight)" in listing.lower()
    assert "success 24 h" in listing.lower() and "waiting deliveries" in listing.lower()
    assert "?tenant=org_t" in listing


def test_another_app_can_extend_the_subscription_admin(admin_client_):
    from django.contrib import admin as django_admin

    from subscriptions.admin import SubscriptionAdmin, SubscriptionAdminExtension, TenantAdmin

    @django_admin.display(description="billing plan")
    def plan(obj):
        return f"plan-of-{obj.description}"

    class Billing(SubscriptionAdminExtension):
        list_display = (plan,)

        def object_links(self, model_admin, request, obj):
            return [("invoice-link", "Invoices", f"/billing/{obj.pk}/")]

    sub = make_subscription("http://127.0.0.1:9/ext", description="gold")
    with pytest.raises(TypeError, match="TenantAdminExtension"):
        TenantAdmin.register_extension(Billing())  # the other admin's kind: refused
    SubscriptionAdmin.register_extension(Billing())
    SubscriptionAdmin.register_extension(Billing())  # again: replaces, adds no second copy
    try:
        listing = admin_client_.get(
            reverse("admin:webhook_subscriptions_subscription_changelist")
        ).content.decode()
        change = admin_client_.get(
            reverse("admin:webhook_subscriptions_subscription_change", args=[sub.pk])
        ).content.decode()
    finally:
        SubscriptionAdmin.unregister_extension(Billing)

    assert "billing plan" in listing.lower()
    assert listing.count("plan-of-gold") == 1  # registered twice, shown once
    assert "success 24 h" in listing.lower()  # the pipeline's columns are still there
    assert f'id="invoice-link" href="/billing/{sub.pk}/"' in change
    assert 'id="replay-link"' in change


def test_the_admin_index_links_the_dashboard_at_the_top(admin_client_, django_user_model):
    # Issue 28: docs/operations.md says the dashboard is linked at the top of the admin index;
    # it was reachable only from a button of the delivery list.
    index = admin_client_.get(reverse("admin:index")).content.decode()
    link = index.split('id="webhooks-dashboard-link"', 1)[1]
    assert f'href="{reverse("admin:deliveries_dashboard")}"' in link.split("</div>", 1)[0]
    # Above the app list, inside the page's content.
    assert index.index('id="webhooks-dashboard-link"') < index.index('class="app-')
    assert admin_client_.get(reverse("admin:deliveries_dashboard")).status_code == 200
    # Staff without the deliveries' view permission get no link to it.
    django_user_model.objects.create_user("plain", password="pw", is_staff=True)
    plain = Client()
    plain.login(username="plain", password="pw")
    page = plain.get(reverse("admin:index")).content.decode()
    assert 'id="webhooks-dashboard-link"' not in page and "content-main" in page
