"""Issue 28: what the portal and the admin say is true. The URL rule follows the settings in
force, a parked delivery shows when the sweep really sends it, and "Last success" moves with
every successful attempt, a manual "Send again now" included."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone

from deliveries.models import Delivery, DeliveryStatus
from deliveries.schedule import sweep_interval
from deliveries.services import attempt_delivery, pickup, replay
from subscriptions.admin import SubscriptionAdminForm
from subscriptions.forms import destination_rule
from tests.ops_helpers import make_delivery
from tests.portal_helpers import portal_url, tenant_endpoint
from tests.receiver import Reply

pytestmark = pytest.mark.django_db

TENANT = "acme"



@pytest.mark.parametrize(
    ("allow_http", "allow_private", "says", "never"),
    [
        (False, False, "reachable from the internet over HTTPS", "plain HTTP"),
        (True, False, "over HTTPS or plain HTTP", "private"),
        (False, True, "must use HTTPS; private and loopback addresses are allowed", "plain"),
        (True, True, "HTTPS or plain HTTP, and may point at a private or loopback", "internet"),
    ],
)
def test_the_url_rule_reads_the_settings_in_force(
    portal, webhooks, allow_http, allow_private, says, never
):
    # The add page said "reachable from the internet over HTTPS" while the demo takes
    # http://127.0.0.1:9001: the rule now says what ALLOW_HTTP and ALLOW_PRIVATE_NETWORKS allow.
    webhooks(ALLOW_HTTP=allow_http, ALLOW_PRIVATE_NETWORKS=allow_private)
    rule = destination_rule()
    assert says in rule and never not in rule
    page = portal.get(portal_url("endpoint-create")).content.decode()
    lead = re.search(r'<span id="url-rule">(.*?)</span>', page).group(1)
    assert lead == rule.replace("'", "&#x27;")
    # The admin's form says the same.
    assert rule in str(SubscriptionAdminForm().fields["url"].help_text)


def test_a_parked_delivery_shows_when_the_sweep_sends_it(portal, webhooks):
    # "Next attempt 15:38:49" was sent at 15:39:19 by the sweep (SWEEP_GRACE past due, at the
    # sweep's next run): the page gives that window beside the nominal time.
    webhooks(SWEEP_GRACE=30)
    endpoint = tenant_endpoint(TENANT)
    now = timezone.now()
    parked = make_delivery(
        endpoint, DeliveryStatus.RETRYING, next_attempt_at=now + dt.timedelta(seconds=300)
    )
    soon = make_delivery(
        endpoint, DeliveryStatus.RETRYING, next_attempt_at=now + dt.timedelta(seconds=5)
    )
    parked.refresh_from_db()
    soon.refresh_from_db()

    pick = pickup.next_send(parked)
    assert pick.by_sweep
    assert pick.earliest == parked.next_attempt_at + dt.timedelta(seconds=30)
    assert pick.latest == pick.earliest + dt.timedelta(seconds=sweep_interval())
    # A 5 s wait rides a Celery countdown: sent at its nominal time.
    assert not pickup.next_send(soon).by_sweep

    page = portal.get(portal_url("delivery", parked.pk)).content.decode()
    note = re.search(r'id="sweep-pickup">(.*?)</div>', page).group(1)
    earliest = timezone.localtime(pick.earliest).strftime("%H:%M:%S")
    latest = timezone.localtime(pick.latest).strftime("%H:%M:%S")
    assert note == f"Parked for the sweep: sent between {earliest} and {latest}."
    assert 'id="sweep-pickup"' not in portal.get(portal_url("delivery", soon.pk)).content.decode()


def test_the_sweep_interval_is_the_beat_entry_in_force():
    class Conf:
        beat_schedule = {"tuned": {"task": "deliveries.tasks.sweep", "schedule": 40.0}}

    class App:
        conf = Conf()

    assert sweep_interval(App()) == 40.0
    minute = dt.timedelta(minutes=1)
    Conf.beat_schedule = {"tuned": {"task": "deliveries.tasks.sweep", "schedule": minute}}
    assert sweep_interval(App()) == 60.0
    Conf.beat_schedule = {}
    assert sweep_interval(App()) == 15.0


def test_last_success_moves_with_a_manual_send_again(
    portal, receiver, broker, django_capture_on_commit_callbacks
):
    # Issue 28: after a successful "Send again now" the endpoint's "Last success" kept the older
    # time (it was written at most once a minute) until the next event.
    receiver.script("/hook", Reply(200), Reply(200))
    endpoint = tenant_endpoint(TENANT, receiver.url("/hook"))
    delivery = make_delivery(endpoint, DeliveryStatus.PENDING, next_attempt_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        attempt_delivery(delivery.pk, 1)
    endpoint.refresh_from_db()
    first = endpoint.last_success_at
    assert first is not None
    # The first success was noted 20 s ago, well within the old minute.
    endpoint.last_success_at = first - dt.timedelta(seconds=20)
    endpoint.save(update_fields=["last_success_at"])

    number = replay.redeliver_one(Delivery.objects.get(pk=delivery.pk))
    with django_capture_on_commit_callbacks(execute=True):
        attempt_delivery(delivery.pk, number)

    endpoint.refresh_from_db()
    assert endpoint.last_success_at >= first
    listing = portal.get(portal_url("endpoints")).content.decode()
    shown = timezone.localtime(endpoint.last_success_at).strftime("%Y-%m-%d %H:%M:%S")
    assert shown in listing
