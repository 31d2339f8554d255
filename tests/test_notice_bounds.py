"""Notices are bounded: a flapping endpoint makes one `failing` ... `recovered` pair
(NOTICE_COOLDOWN), each tenant gets at most NOTICE_HOURLY_CAP emails and operator webhooks an
hour (the next one says how many were held back), and a notice whose email could not be sent
says why. Failures are real (a receiver on 127.0.0.1 through the attempt path, a real worker
for the end-to-end case); only the clock is moved."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time

import pytest
from django.core import mail
from django.utils import timezone

from deliveries.models import Delivery, DeliveryStatus, EndpointNotice, NoticeKind
from deliveries.services import attempt_delivery, notices
from deliveries.services.probes import send_test_event
from subscriptions.models import Subscription, Tenant
from tests.factories import make_subscription
from tests.ops_helpers import make_delivery, notices_of
from tests.procs import wait_until
from tests.receiver import Reply

COOLDOWN = 900


def attempt_once(sub: Subscription) -> Delivery:
    delivery = make_delivery(sub, DeliveryStatus.PENDING, next_attempt_at=timezone.now())
    attempt_delivery(delivery.pk, 1)
    delivery.refresh_from_db()
    return delivery


# --- the cool-down ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_flapping_endpoint_makes_one_pair_of_notices(
    receiver, recorder, webhooks, django_capture_on_commit_callbacks
):
    webhooks(NOTICE_COOLDOWN=COOLDOWN)
    receiver.script("/hook", *[Reply(500), Reply(200)] * 6)
    sub = make_subscription(receiver.url("/hook"))

    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(12):  # fail, recover, fail, recover...
            attempt_once(sub)

    failing = EndpointNotice.objects.get(subscription=sub, kind=NoticeKind.FAILING)
    # One failing notice, and one pending recovered notice of the same incident: each new
    # failure within the cool-down withdrew the previous recovery.
    assert notices_of(sub) == [
        (NoticeKind.FAILING, failing.incident_started_at),
        (NoticeKind.RECOVERED, failing.incident_started_at),
    ]
    assert recorder.kinds == [NoticeKind.FAILING]  # the recovery is not final yet

    # Before the cool-down has passed, nothing is released; after it, the pair is complete.
    assert notices.release_due(timezone.now()) == 0
    later = timezone.now() + dt.timedelta(seconds=COOLDOWN + 1)
    with django_capture_on_commit_callbacks(execute=True):
        assert notices.release_due(later) == 1
        assert notices.release_due(later) == 0  # once
    assert recorder.kinds == [NoticeKind.FAILING, NoticeKind.RECOVERED]
    recovered = EndpointNotice.objects.get(subscription=sub, kind=NoticeKind.RECOVERED)
    assert recovered.pending_until is None
    # It counts what the whole flapping period missed: the six failed deliveries.
    assert recovered.missed_count == 6


@pytest.mark.django_db
def test_while_flapping_the_open_incident_stays_current(
    receiver, webhooks, django_capture_on_commit_callbacks
):
    webhooks(NOTICE_COOLDOWN=COOLDOWN)
    receiver.script("/hook", Reply(500), Reply(200), Reply(500))
    sub = make_subscription(receiver.url("/hook"))

    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            attempt_once(sub)

    sub.refresh_from_db()
    failing = EndpointNotice.objects.get(subscription=sub, kind=NoticeKind.FAILING)
    assert sub.failing_since > failing.incident_started_at  # a later run of the same incident
    assert notices.current(sub) == failing
    assert failing.disable_at == sub.failing_since + dt.timedelta(seconds=5 * 86400)


@pytest.mark.django_db
def test_a_failure_after_the_cool_down_is_a_new_incident(
    receiver, recorder, webhooks, django_capture_on_commit_callbacks
):
    webhooks(NOTICE_COOLDOWN=COOLDOWN)
    receiver.script("/hook", Reply(500), Reply(200), Reply(500))
    sub = make_subscription(receiver.url("/hook"))
    with django_capture_on_commit_callbacks(execute=True):
        attempt_once(sub)
        attempt_once(sub)
        notices.release_due(timezone.now() + dt.timedelta(seconds=COOLDOWN + 1))
        attempt_once(sub)

    assert [kind for kind, _ in notices_of(sub)] == [
        NoticeKind.FAILING,
        NoticeKind.RECOVERED,
        NoticeKind.FAILING,
    ]
    assert recorder.kinds == [NoticeKind.FAILING, NoticeKind.RECOVERED, NoticeKind.FAILING]


@pytest.mark.integration
def test_alternating_receiver_twenty_test_events_make_at_most_three_operator_webhooks(
    receiver, start_worker, broker, webhooks
):
    # The receiver alternates 500 and 200 for every request; a real worker sends 20 test
    # events published over about 20 s, with their retries. Before: 40 operator webhooks.
    receiver.script("/hook", *[Reply(500), Reply(200)] * 200)
    receiver.script("/ops", Reply(200))
    ops = {"NOTICE_WEBHOOK_URL": receiver.url("/ops"), "NOTICE_COOLDOWN": COOLDOWN}
    webhooks(**ops)
    start_worker(overrides=ops)
    sub = make_subscription(receiver.url("/hook"), ["order.*"])

    for _ in range(20):
        send_test_event(sub)
        time.sleep(1)

    assert wait_until(
        lambda: (
            not Delivery.objects.exclude(
                status__in=[DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED]
            ).exists()
        ),
        120,
    )
    assert receiver.counts["/hook"] >= 20
    # The failing notice was posted; the recovery waits for its cool-down, then is posted.
    assert receiver.wait_for(1, path="/ops", timeout=30)
    notices.release_due(timezone.now() + dt.timedelta(seconds=COOLDOWN + 1))
    assert receiver.wait_for(2, path="/ops", timeout=30)
    assert wait_until(
        lambda: not EndpointNotice.objects.filter(announced_at__isnull=True).exists(), 30
    )

    posted = [json.loads(r.body)["type"] for r in receiver.requests_to("/ops")]
    assert len(posted) <= 3, posted
    assert posted[0] == "endpoint.failing" and posted[-1] == "endpoint.recovered"


# --- the hourly cap --------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_hourly_cap_holds_back_and_the_next_notice_says_how_many(receiver, webhooks):
    webhooks(
        NOTICE_EMAIL=True,
        NOTICE_WEBHOOK_URL=receiver.url("/ops"),
        NOTICE_HOURLY_CAP=2,
        NOTICE_COOLDOWN=0,
    )
    Tenant.objects.filter(pk=Tenant.objects.for_key("acme").pk).update(
        contact_email="ops@acme.example"
    )
    now = timezone.now()
    subs = [make_subscription(f"http://127.0.0.1:9/{n}", tenant="acme") for n in range(5)]
    other = make_subscription("http://127.0.0.1:9/other", tenant="globex")
    made = [notices.endpoint_failing(sub, now) for sub in subs[:4]]

    results = [notices.announce(n.pk, now=now) for n in made]
    elsewhere = notices.announce(notices.endpoint_failing(other, now).pk, now=now)

    assert [r.webhook for r in results[:2]] == ["HTTP 200", "HTTP 200"]
    for result in results[2:]:
        assert result.webhook.startswith("held back: the hourly cap of 2")
        assert result.email.startswith("held back")
    assert elsewhere.webhook == "HTTP 200"  # per tenant
    assert receiver.counts["/ops"] == 3 and len(mail.outbox) == 2
    assert EndpointNotice.objects.filter(held_back=True).count() == 2

    # An hour later the next notice goes out and says that two were held back.
    later = now + dt.timedelta(minutes=61)
    fifth = notices.endpoint_failing(subs[4], later)
    assert notices.announce(fifth.pk, now=later).webhook == "HTTP 200"
    fifth.refresh_from_db()
    assert fifth.held_back_before == 2
    assert json.loads(receiver.requests_to("/ops")[-1].body)["data"]["held_back"] == 2
    assert "2 earlier notice(s) for this tenant were not emailed" in mail.outbox[-1].body


# --- emails that cannot be sent say why ----------------------------------------------------


@pytest.mark.django_db
def test_a_description_with_a_line_break_stored_earlier_still_makes_a_one_line_subject(webhooks):
    webhooks(NOTICE_EMAIL=True)
    Tenant.objects.filter(pk=Tenant.objects.for_key("acme").pk).update(
        contact_email="ops@acme.example"
    )
    sub = make_subscription("http://127.0.0.1:9/x", tenant="acme")
    Subscription.objects.filter(pk=sub.pk).update(description="Orders\r\nBcc: x@evil.example")
    sub.refresh_from_db()
    notice = notices.endpoint_failing(sub, timezone.now())

    result = notices.announce(notice.pk)

    assert result.email == "sent to ops@acme.example"
    (message,) = mail.outbox
    assert message.subject == "Webhook endpoint failing: Orders Bcc: x@evil.example"
    assert message.to == ["ops@acme.example"] and not message.bcc


@pytest.mark.django_db
def test_a_contact_list_stored_earlier_is_not_mailed_and_the_notice_says_why(webhooks, caplog):
    webhooks(NOTICE_EMAIL=True)
    tenant = Tenant.objects.for_key("acme")
    # Written past Tenant.save()'s check, as an old row or a raw UPDATE would be.
    Tenant.objects.filter(pk=tenant.pk).update(contact_email="a@b.example, x@evil.example")
    notice = notices.endpoint_failing(
        make_subscription("http://127.0.0.1:9/x", tenant="acme"), timezone.now()
    )

    with caplog.at_level(logging.WARNING, logger="deliveries.notices"):
        result = notices.announce(notice.pk)

    assert mail.outbox == []
    assert result.email.startswith("not sent: the contact address")
    notice.refresh_from_db()
    assert notice.email_result == result.email
    assert "email not sent" in caplog.text and "not one valid address" in caplog.text


@pytest.mark.django_db
def test_a_failing_mail_backend_is_recorded_on_the_notice_and_logged(settings, webhooks, caplog):
    webhooks(NOTICE_EMAIL=True)
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9  # nothing listens: refused
    Tenant.objects.filter(pk=Tenant.objects.for_key("acme").pk).update(
        contact_email="ops@acme.example"
    )
    notice = notices.endpoint_failing(
        make_subscription("http://127.0.0.1:9/x", tenant="acme"), timezone.now()
    )

    with caplog.at_level(logging.WARNING, logger="deliveries.notices"):
        result = notices.announce(notice.pk)

    assert result.email.startswith("failed: ConnectionRefusedError")
    notice.refresh_from_db()
    assert notice.email_result == result.email
    assert "email failed" in caplog.text
