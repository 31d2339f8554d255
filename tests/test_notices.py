"""Operational notices: one notice per incident when an endpoint starts
failing, is disabled or recovers; the `endpoint_notice` signal after commit; the admin list and
the subscription's panel; the email (Django's locmem backend) and the operator webhook (a real
receiver on 127.0.0.1). Failures are real: a receiver answering 500 through the attempt path.
Only the clock is moved, for DISABLE_AFTER."""

from __future__ import annotations

import datetime as dt
import json
import re
import threading

import pytest
from django.core import mail
from django.db import connections, transaction
from django.urls import reverse
from django.utils import timezone

from deliveries.models import Delivery, DeliveryStatus, EndpointNotice, NoticeKind
from deliveries.services import attempt_delivery, maintenance, notices, publish
from subscriptions.models import Subscription
from subscriptions.secrets import generate_secret
from subscriptions.services import disable_subscription
from tests.factories import make_subscription, make_tenant_user
from tests.ops_helpers import make_delivery, notices_of
from tests.procs import wait_until
from tests.receiver import Reply
from webhooks_receiver import verify

DAY = 86400


def waiting(sub: Subscription) -> Delivery:
    return make_delivery(sub, DeliveryStatus.PENDING, next_attempt_at=timezone.now())


def attempt(delivery: Delivery) -> Delivery:
    """One real attempt of `delivery` (its next one) through the attempt path."""
    delivery.refresh_from_db()
    attempt_delivery(delivery.pk, delivery.attempts + 1)
    delivery.refresh_from_db()
    return delivery


# --- One notice per incident, through real failures ----------------------------------------------


@pytest.mark.django_db
def test_a_failing_endpoint_makes_one_notice_per_incident(
    receiver, recorder, django_capture_on_commit_callbacks, webhooks
):
    # No cool-down: every recovery is final at once (tests/test_notice_bounds.py has it on).
    webhooks(NOTICE_COOLDOWN=0)
    receiver.script("/hook", Reply(500, body=b"database is down"))
    sub = make_subscription(receiver.url("/hook"), owner=None)
    deliveries = [waiting(sub) for _ in range(3)]

    # Three deliveries fail, twice each: six failed attempts, one incident.
    with django_capture_on_commit_callbacks(execute=True):
        for delivery in deliveries * 2:
            assert attempt(delivery).status == DeliveryStatus.RETRYING

    sub.refresh_from_db()
    assert sub.failing_since is not None
    assert notices_of(sub) == [(NoticeKind.FAILING, sub.failing_since)]
    notice = EndpointNotice.objects.get(subscription=sub)
    assert notice.disable_at == sub.failing_since + dt.timedelta(seconds=5 * DAY)
    assert notice.reason == "Receiver answered 500"
    # At the first failure, one delivery of the incident had not arrived: the one that failed.
    assert notice.missed_count == 1
    assert notice.missed_since == deliveries[0].created_at
    assert notices.replay_query(notice)["status"] == ["failed", "discarded", "retrying"]
    # The signal: once, after commit, with the notice.
    assert recorder.kinds == [NoticeKind.FAILING]
    assert recorder.calls[0]["sender"] is EndpointNotice
    assert recorder.calls[0]["notice"].pk == notice.pk

    # The receiver is fixed: the next success ends the incident with one `recovered` notice...
    receiver.script("/hook", Reply(200))
    with django_capture_on_commit_callbacks(execute=True):
        for delivery in deliveries:
            assert attempt(delivery).status == DeliveryStatus.SUCCEEDED
    sub.refresh_from_db()
    assert sub.failing_since is None
    started = notice.incident_started_at
    assert notices_of(sub) == [(NoticeKind.FAILING, started), (NoticeKind.RECOVERED, started)]
    assert recorder.kinds == [NoticeKind.FAILING, NoticeKind.RECOVERED]

    # ...and a new failure is a new incident with its own notice.
    receiver.script("/hook", Reply(503))
    with django_capture_on_commit_callbacks(execute=True):
        attempt(waiting(sub))
    sub.refresh_from_db()
    assert notices_of(sub)[-1] == (NoticeKind.FAILING, sub.failing_since)
    assert sub.failing_since > started
    assert recorder.kinds == [NoticeKind.FAILING, NoticeKind.RECOVERED, NoticeKind.FAILING]


@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_make_one_notice_for_one_incident(receiver, recorder):
    # Eight attempts fail at the same moment in eight threads (each its own connection): the
    # guarded UPDATE and the unique constraint leave one `failing` notice, one signal.
    receiver.script("/hook", Reply(500, delay=0.2))
    sub = make_subscription(receiver.url("/hook"))
    deliveries = [waiting(sub) for _ in range(8)]
    barrier = threading.Barrier(len(deliveries))
    errors: list[BaseException] = []

    def run(delivery_id: int) -> None:
        try:
            barrier.wait()
            attempt_delivery(delivery_id, 1)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(d.pk,)) for d in deliveries]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert errors == []
    assert Delivery.objects.filter(status=DeliveryStatus.RETRYING).count() == 8
    assert [kind for kind, _ in notices_of(sub)] == [NoticeKind.FAILING]
    assert recorder.kinds == [NoticeKind.FAILING]


@pytest.mark.django_db
def test_the_database_refuses_a_second_notice_for_the_same_incident():
    sub = make_subscription("http://127.0.0.1:9/twice")
    started = timezone.now()

    first = notices.endpoint_failing(sub, started)
    second = notices.endpoint_failing(sub, started)

    assert first is not None and second is None
    assert EndpointNotice.objects.filter(subscription=sub).count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_signal_is_sent_after_commit_only(recorder):
    sub = make_subscription("http://127.0.0.1:9/commit")

    with transaction.atomic():
        notices.endpoint_failing(sub, timezone.now())
        assert recorder.calls == []  # not before the notice is committed
    assert recorder.kinds == [NoticeKind.FAILING]

    with pytest.raises(RuntimeError), transaction.atomic():
        notices.endpoint_recovered(sub, timezone.now())
        raise RuntimeError("rolled back")
    assert recorder.kinds == [NoticeKind.FAILING]  # nothing for a rolled-back notice


# --- Disabled: DISABLE_AFTER, 410 Gone, a person -------------------------------------------------


@pytest.mark.django_db
def test_disable_after_makes_the_disabled_notice_of_the_same_incident(
    receiver, recorder, django_capture_on_commit_callbacks
):
    receiver.script("/hook", Reply(500))
    sub = make_subscription(receiver.url("/hook"))
    first, second = waiting(sub), waiting(sub)
    with django_capture_on_commit_callbacks(execute=True):
        attempt(first)
        attempt(second)
    sub.refresh_from_db()
    failing = EndpointNotice.objects.get(subscription=sub)

    # Nothing changes for DISABLE_AFTER (the clock is moved, not waited for).
    later = failing.disable_at + dt.timedelta(seconds=1)
    with django_capture_on_commit_callbacks(execute=True):
        assert maintenance.disable_dead_endpoints(now=failing.disable_at - dt.timedelta(1)) == 0
        assert maintenance.disable_dead_endpoints(now=later) == 1

    disabled = EndpointNotice.objects.get(subscription=sub, kind=NoticeKind.DISABLED)
    assert disabled.incident_started_at == sub.failing_since == failing.incident_started_at
    assert "failed for 5 days" in disabled.reason
    assert disabled.disable_at is None
    assert disabled.missed_count == 2  # both were waiting to retry; the disable discarded them
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.DISCARDED}
    assert notices.replay_query(disabled)["status"] == ["skipped", "discarded", "failed"]
    assert recorder.kinds == [NoticeKind.FAILING, NoticeKind.DISABLED]


@pytest.mark.django_db
def test_410_gone_makes_a_disabled_notice(receiver, recorder, django_capture_on_commit_callbacks):
    receiver.script("/gone", Reply(410))
    sub = make_subscription(receiver.url("/gone"))

    with django_capture_on_commit_callbacks(execute=True):
        attempt(waiting(sub))

    sub.refresh_from_db()
    assert not sub.is_active
    # No failing run came before it: the incident starts when it was disabled.
    assert notices_of(sub) == [(NoticeKind.DISABLED, sub.disabled_at)]
    assert EndpointNotice.objects.get().reason == "Endpoint answered 410 Gone."
    assert recorder.kinds == [NoticeKind.DISABLED]


@pytest.mark.django_db
def test_a_person_disabling_makes_one_disabled_notice(recorder, django_capture_on_commit_callbacks):
    sub = make_subscription("http://127.0.0.1:9/manual")

    with django_capture_on_commit_callbacks(execute=True):
        assert disable_subscription(sub, "Paused by the customer")
        assert not disable_subscription(sub, "again")  # already disabled: nothing more

    assert notices_of(sub) == [(NoticeKind.DISABLED, sub.disabled_at)]
    assert EndpointNotice.objects.get().reason == "Paused by the customer"
    assert recorder.kinds == [NoticeKind.DISABLED]


# --- Email and the operator webhook --------------------------------------------------------------


@pytest.mark.django_db
def test_the_notice_is_emailed_to_the_endpoint_contact_once(
    receiver, webhooks, django_user_model, django_capture_on_commit_callbacks, broker
):
    webhooks(NOTICE_EMAIL=True)
    owner = make_tenant_user("acme", "default", email="ops@acme.example")
    receiver.script("/hook", Reply(500, body=b"nope"))
    sub = make_subscription(receiver.url("/hook"), owner=owner, description="Acme orders")

    with django_capture_on_commit_callbacks(execute=True):
        attempt(waiting(sub))
    notice = EndpointNotice.objects.get()
    # The announcement went to the maintenance queue; a worker runs it (here: this process).
    result = notices.announce(notice.pk)

    assert result is not None and result.email == "sent to ops@acme.example"
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["ops@acme.example"]
    assert message.subject == "Webhook endpoint failing: Acme orders"
    assert "Last error: Receiver answered 500" in message.body
    disable_at = notice.disable_at.isoformat().replace("+00:00", "Z")
    assert f"If no delivery succeeds before {disable_at}, the endpoint will be disabled." in (
        message.body
    )
    assert f"POST /api/subscriptions/{sub.pk}/replay/" in message.body
    # At most once: a second run (a redelivered message) sends nothing.
    assert notices.announce(notice.pk) is None
    assert len(mail.outbox) == 1
    notice.refresh_from_db()
    assert notice.announced_at is not None and notice.email_result == "sent to ops@acme.example"


@pytest.mark.django_db
def test_the_tenants_contact_address_comes_first(webhooks, django_user_model):
    from subscriptions.models import Tenant

    webhooks(NOTICE_EMAIL=True)
    Tenant.objects.create(key="org_42", name="Acme", contact_email="webhooks@acme.example")
    owner = django_user_model.objects.create_user("dev", email="dev@acme.example")
    sub = make_subscription("http://127.0.0.1:9/t", owner=owner, tenant="org_42")
    notice = notices.endpoint_failing(sub, timezone.now())

    assert notices.announce(notice.pk).email == "sent to webhooks@acme.example"
    assert mail.outbox[0].to == ["webhooks@acme.example"]
    assert "Tenant: org_42" in mail.outbox[0].body
    assert notice.tenant_id == "org_42"


@pytest.mark.django_db
def test_the_owner_is_told_only_while_they_belong_to_the_tenant(webhooks, django_user_model):
    from django.contrib.auth.models import Group

    webhooks(NOTICE_EMAIL=True)
    dev = make_tenant_user("dev", "org_42", email="dev@acme.example")
    sub = make_subscription("http://127.0.0.1:9/t", owner=dev, tenant="org_42")
    notice = notices.endpoint_failing(sub, timezone.now())
    assert notices.contact_addresses(notice) == ["dev@acme.example"]

    # The developer leaves the customer account: the owner field stays, the mail stops.
    dev.groups.remove(Group.objects.get(name="tenant:org_42"))
    assert notices.contact_addresses(notice) == []

    # An operator who made an endpoint for a customer is not that customer's contact...
    root = django_user_model.objects.create_superuser("root", "root@ops.example", "pw")
    theirs = make_subscription("http://127.0.0.1:9/c", owner=root, tenant="org_42")
    assert notices.contact_addresses(notices.endpoint_failing(theirs, timezone.now())) == []
    # ... but is the contact of the default tenant's endpoints, which operators run.
    ours = make_subscription("http://127.0.0.1:9/o", owner=root)
    assert notices.contact_addresses(notices.endpoint_failing(ours, timezone.now())) == [
        "root@ops.example"
    ]


@pytest.mark.django_db
def test_without_a_contact_address_nothing_is_emailed(webhooks):
    webhooks(NOTICE_EMAIL=True)
    sub = make_subscription("http://127.0.0.1:9/nobody")
    notice = notices.endpoint_failing(sub, timezone.now())

    assert notices.announce(notice.pk).email == "no contact address"
    assert mail.outbox == []


@pytest.mark.django_db
def test_the_operator_webhook_is_posted_signed_to_a_real_receiver(receiver, webhooks):
    secret = generate_secret()
    webhooks(NOTICE_WEBHOOK_URL=receiver.url("/ops"), NOTICE_WEBHOOK_SECRET=secret)
    receiver.script("/ops", Reply(204))
    sub = make_subscription("http://127.0.0.1:9/down", description="CRM")
    make_delivery(sub, DeliveryStatus.FAILED)
    notice = notices.endpoint_failing(sub, timezone.now() - dt.timedelta(minutes=1))

    result = notices.announce(notice.pk)

    assert result.webhook == "HTTP 204" and result.email == ""
    (request,) = receiver.requests_to("/ops")
    body = verify(secret, request.body, request.headers)  # raises on a bad signature
    assert request.headers["webhook-id"] == f"notice_{notice.pk}"
    assert body["type"] == "endpoint.failing"
    assert body["data"]["subscription"] == {
        "id": str(sub.pk),
        "url": "http://127.0.0.1:9/down",
        "description": "CRM",
    }
    assert body["data"]["missed"] == 1 and body["data"]["tenant"] == "default"
    assert body["data"]["replay"]["status"] == ["failed", "discarded", "retrying"]
    assert body["data"]["disable_at"].endswith("Z")


@pytest.mark.django_db
def test_a_failing_operator_webhook_is_recorded_not_raised(receiver, webhooks):
    webhooks(NOTICE_WEBHOOK_URL=receiver.url("/ops"))
    receiver.script("/ops", Reply(500))
    notice = notices.endpoint_failing(make_subscription("http://127.0.0.1:9/x"), timezone.now())

    assert notices.announce(notice.pk).webhook == "failed: HTTP 500"
    notice.refresh_from_db()
    assert notice.webhook_result == "failed: HTTP 500"
    assert "webhook-signature" not in receiver.requests_to("/ops")[0].headers  # no secret set


@pytest.mark.integration
def test_end_to_end_a_worker_notices_the_failure_and_tells_the_operator(
    receiver, start_worker, broker
):
    # A real worker delivers to a receiver answering 500; the attempt that starts the failing
    # run makes the notice, whose announcement runs as a task and reaches the operator URL.
    receiver.script("/hook", Reply(500))
    receiver.script("/ops", Reply(200))
    start_worker(overrides={"NOTICE_WEBHOOK_URL": receiver.url("/ops")})
    sub = make_subscription(receiver.url("/hook"), ["order.*"])

    for n in range(3):
        publish("order.created", {"n": n})

    assert receiver.wait_for(1, path="/ops", timeout=30)
    # The result is written once the POST has been answered.
    assert wait_until(lambda: EndpointNotice.objects.exclude(webhook_result="").exists(), 10)
    notice = EndpointNotice.objects.get()
    assert notice.kind == NoticeKind.FAILING and notice.subscription_id == sub.pk
    assert notice.webhook_result == "HTTP 200"
    body = json.loads(receiver.requests_to("/ops")[0].body)
    assert body["type"] == "endpoint.failing"
    # Every delivery failed many times (the schedule is fast in tests): still one notice.
    assert wait_until(
        lambda: Delivery.objects.filter(status=DeliveryStatus.FAILED).count() == 3, 30
    )
    assert EndpointNotice.objects.count() == 1
    assert len(receiver.requests_to("/ops")) == 1


# --- Admin ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_notices_in_the_admin_list_and_on_the_subscription_page(client, staff_user):
    client.force_login(staff_user)
    sub = make_subscription("http://127.0.0.1:9/admin", description="Shop")
    old = make_delivery(
        sub, DeliveryStatus.FAILED, created_at=timezone.now() - dt.timedelta(hours=2)
    )
    started = timezone.now() - dt.timedelta(hours=3)
    notice = notices.endpoint_failing(sub, started)
    assert notice.missed_since == old.created_at

    listing = client.get(reverse("admin:deliveries_endpointnotice_changelist")).content.decode()
    page = client.get(
        reverse("admin:webhook_subscriptions_subscription_change", args=[sub.pk])
    ).content.decode()

    assert "Shop" in listing and "Failing" in listing
    assert reverse("admin:deliveries_endpointnotice_add") not in listing  # read-only
    panel = page.split('id="notices"', 1)[1]
    assert "Failing" in panel and "(now)" not in panel  # failing_since was never set on sub
    assert timezone.localtime(notice.disable_at).strftime("%Y-%m-%d %H:%M:%S") in panel
    replay = panel.split('class="notice-replay" href="', 1)[1].split('"', 1)[0]
    form = client.get(replay.replace("&amp;", "&")).content.decode()
    since = timezone.localtime(old.created_at).strftime("%Y-%m-%d %H:%M:%S")
    assert f'value="{since}"' in form
    for status in ("failed", "discarded", "retrying"):
        assert re.search(rf'value="{status}"[^>]*checked', form), status


@pytest.mark.django_db
def test_the_subscription_page_marks_the_current_incident(client, staff_user):
    client.force_login(staff_user)
    started = timezone.now()
    sub = make_subscription("http://127.0.0.1:9/now", failing_since=started)
    notices.endpoint_failing(sub, started)

    page = client.get(
        reverse("admin:webhook_subscriptions_subscription_change", args=[sub.pk])
    ).content.decode()

    assert "notice-current" in page and "(now)" in page


# --- Settings -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("NOTICE_EMAIL", "yes"),
        ("NOTICE_WEBHOOK_URL", "ftp://ops.example/hook"),
        ("NOTICE_WEBHOOK_SECRET", "not-a-secret"),
    ],
)
def test_notice_settings_are_checked(settings, key, value):
    from deliveries.checks import check_pipeline_settings

    settings.WEBHOOKS = {**settings.WEBHOOKS, key: value}

    errors = [m for m in check_pipeline_settings() if m.id == "webhooks.E007"]

    assert [key in m.msg for m in errors] == [True]
    assert "not-a-secret" not in errors[0].msg  # a secret is never echoed


# --- The template tags the portal (or any page) includes -----------------------------------------


def render(source: str, **context) -> str:
    from django.template import Context, Template

    return Template("{% load webhooks_notices %}" + source).render(Context(context))


@pytest.mark.django_db
def test_the_endpoint_tags_show_the_failing_incident_and_its_replay():
    from urllib.parse import parse_qs, urlsplit

    from django.http import QueryDict

    from deliveries.forms import ReplayForm

    started = timezone.now() - dt.timedelta(minutes=30)
    sub = make_subscription("http://127.0.0.1:9/tag", failing_since=started)
    missed = make_delivery(sub, DeliveryStatus.RETRYING, next_attempt_at=timezone.now())
    notice = notices.endpoint_failing(sub, started)

    html = render("{% endpoint_notice endpoint '/portal/endpoints/x/replay/' %}", endpoint=sub)

    assert 'id="endpoint-notice"' in html and "This endpoint is failing" in html
    disable_at = timezone.localtime(notice.disable_at).strftime("%Y-%m-%d %H:%M:%S")
    assert f"If no delivery succeeds before {disable_at}" in html
    assert "When it started failing, 1 delivery had not reached it" in html
    link = re.search(r'id="endpoint-notice-replay" href="([^"]+)"', html).group(1)
    url = urlsplit(link.replace("&amp;", "&"))
    assert url.path == "/portal/endpoints/x/replay/"
    assert parse_qs(url.query)["status"] == ["failed", "discarded", "retrying"]
    # The replay forms read the link's values as they are.
    form = ReplayForm(QueryDict(url.query))
    assert form.is_valid(), form.errors
    assert form.cleaned_data["since"] == missed.created_at.replace(microsecond=0)

    history = render("{% endpoint_notice_history endpoint 'r/' %}", endpoint=sub)
    assert 'id="endpoint-notices"' in history and "Failing" in history


@pytest.mark.django_db
def test_the_tags_show_nothing_for_a_healthy_endpoint_and_the_list_line_for_others(
    django_assert_num_queries,
):
    healthy = make_subscription("http://127.0.0.1:9/fine")
    with django_assert_num_queries(0):
        assert render("{% endpoint_notice_line e %}", e=healthy).strip() == ""
        assert render("{% endpoint_notice e %}", e=healthy).strip() == ""

    started = timezone.now()
    failing = make_subscription("http://127.0.0.1:9/bad", failing_since=started)
    notice = notices.endpoint_failing(failing, started)
    line = render("{% endpoint_notice_line e %}", e=failing)
    assert "disabled at " + timezone.localtime(notice.disable_at).strftime("%Y-%m-%d %H:%M") in line

    # Recovered: the notice stays in the history, and no longer reads as the current state.
    notices.endpoint_recovered(failing, started)
    Subscription.objects.filter(pk=failing.pk).update(failing_since=None)
    failing.refresh_from_db()
    assert render("{% endpoint_notice_line e %}", e=failing).strip() == ""
    assert render("{% endpoint_notice e %}", e=failing).strip() == ""
    history = render("{% endpoint_notice_history e %}", e=failing)
    assert "Recovered" in history and "Failing" in history


@pytest.mark.django_db
def test_a_failing_run_without_a_notice_still_says_when_it_will_be_disabled():
    # Runs that began before notices existed have no notice: the box says what it knows.
    started = timezone.now() - dt.timedelta(days=1)
    sub = make_subscription("http://127.0.0.1:9/old", failing_since=started)

    html = render("{% endpoint_notice e %}", e=sub)

    when = timezone.localtime(started + dt.timedelta(seconds=5 * DAY))
    assert f"If no delivery succeeds before {when:%Y-%m-%d %H:%M:%S}" in html
