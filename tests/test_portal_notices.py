"""Operational notices in the customer portal through Django's test client:
the failing endpoint's page says when it will be disabled and links to the replay of what it
missed, the endpoint list carries a line, the history lists the incidents; another tenant's
notices never show. The notices come from real failed attempts against a receiver answering 500."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone

from deliveries.models import DeliveryStatus, EndpointNotice, NoticeKind
from deliveries.services import attempt_delivery
from subscriptions.models import Subscription, Tenant
from tests.ops_helpers import make_delivery
from tests.portal_helpers import open_portal, portal_url, tenant_endpoint
from tests.receiver import Reply

pytestmark = pytest.mark.django_db

TENANT = "acme"


@pytest.fixture
def portal(client):
    Tenant.objects.create(key=TENANT, name="Acme Inc.", contact_email="ops@acme.example")
    open_portal(client, TENANT)
    return client


def fail_once(subscription: Subscription, django_capture_on_commit_callbacks) -> None:
    """One real failed attempt: the receiver answers 500."""
    delivery = make_delivery(subscription, DeliveryStatus.PENDING, next_attempt_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        attempt_delivery(delivery.pk, 1)


def test_a_failing_endpoint_page_says_when_it_will_be_disabled_and_offers_the_replay(
    portal, receiver, broker, django_capture_on_commit_callbacks
):
    receiver.script("/orders", Reply(500))
    endpoint = tenant_endpoint(TENANT, receiver.url("/orders"), description="Orders")
    fail_once(endpoint, django_capture_on_commit_callbacks)
    notice = EndpointNotice.objects.get(subscription=endpoint)
    assert notice.kind == NoticeKind.FAILING and notice.tenant_id == TENANT

    page = portal.get(portal_url("endpoint", endpoint.pk)).content.decode()

    box = page.split('id="endpoint-notice"', 1)[1].split("</section>", 1)[0]
    when = timezone.localtime(notice.disable_at).strftime("%Y-%m-%d %H:%M:%S %Z")
    assert f"If no delivery succeeds before {when}, this endpoint will be disabled." in box
    assert "Last error: Receiver answered 500." in box
    assert "1 delivery had not reached it" in box
    link = re.search(r'id="endpoint-notice-replay" href="([^"]+)"', box).group(1)
    assert link.startswith(portal_url("replay", endpoint.pk) + "?")
    # The history lists the incident.
    assert 'id="endpoint-notices"' in page and "Failing" in page

    # The link opens the portal's replay form filled in: since the missed delivery, with the
    # statuses that cover it (retrying included: it waits for a later attempt).
    form = portal.get(link.replace("&amp;", "&")).content.decode()
    since = timezone.localtime(notice.missed_since).strftime("%Y-%m-%dT%H:%M:%S")
    assert re.search(rf'name="since" value="{since}', form), form
    for status in ("failed", "discarded", "retrying"):
        assert re.search(rf'value="{status}"[^>]*checked', form), status


def test_after_a_final_answer_the_failing_box_promises_no_retry(
    portal, receiver, broker, django_capture_on_commit_callbacks
):
    # Issue 28: a 400 is final (no retry), yet the box said "Deliveries keep being retried
    # meanwhile."; a 500 does wait for a retry and keeps that sentence.
    receiver.script("/final", Reply(400))
    final = tenant_endpoint(TENANT, receiver.url("/final"), description="Final")
    fail_once(final, django_capture_on_commit_callbacks)
    receiver.script("/retried", Reply(500))
    retried = tenant_endpoint(TENANT, receiver.url("/retried"), description="Retried")
    fail_once(retried, django_capture_on_commit_callbacks)

    def box(endpoint: Subscription) -> str:
        page = portal.get(portal_url("endpoint", endpoint.pk)).content.decode()
        return page.split('id="endpoint-notice"', 1)[1].split("</section>", 1)[0]

    assert "Last error: Receiver answered 400." in box(final)
    assert "retried meanwhile" not in box(final)
    assert "No delivery waits for a retry" in box(final)
    assert "Deliveries keep being retried meanwhile." in box(retried)
    assert "No delivery waits for a retry" not in box(retried)
    # The email says the same.
    from deliveries.services import notices

    assert "No delivery waits for a retry" in notices.describe(
        EndpointNotice.objects.get(subscription=final)
    )
    assert "retried on their schedule" in notices.describe(
        EndpointNotice.objects.get(subscription=retried)
    )


def test_a_recovery_reads_recovered_then_its_first_success_not_the_last_error(
    portal, receiver, broker, django_capture_on_commit_callbacks
):
    # Issue 28: the history read "Recovered HTTP 500" (the incident's last error).
    receiver.script("/hook", Reply(500), Reply(202))
    endpoint = tenant_endpoint(TENANT, receiver.url("/hook"))
    fail_once(endpoint, django_capture_on_commit_callbacks)
    fail_once(endpoint, django_capture_on_commit_callbacks)  # this one succeeds

    recovered = EndpointNotice.objects.get(subscription=endpoint, kind=NoticeKind.RECOVERED)
    assert recovered.reason == "First success: receiver answered 202"
    page = portal.get(portal_url("endpoint", endpoint.pk)).content.decode()
    history = page.split('id="endpoint-notices"', 1)[1]
    row = re.search(r'<tr class="notice-recovered">(.*?)</tr>', history, re.S).group(1)
    text = " ".join(re.sub(r"<[^>]+>", " ", row).split())
    assert "Recovered First success: receiver answered 202" in text
    assert "500" not in text


def test_the_endpoint_list_carries_a_line_for_a_failing_endpoint(
    portal, receiver, broker, django_capture_on_commit_callbacks
):
    receiver.script("/crm", Reply(503))
    failing = tenant_endpoint(TENANT, receiver.url("/crm"), description="CRM")
    tenant_endpoint(TENANT, receiver.url("/fine"), description="Shop")
    fail_once(failing, django_capture_on_commit_callbacks)
    notice = EndpointNotice.objects.get()

    listing = portal.get(portal_url("endpoints")).content.decode()

    rows = re.findall(r"<tr>(.*?)</tr>", listing, re.S)
    crm = next(row for row in rows if "CRM" in row)
    shop = next(row for row in rows if "Shop" in row)
    when = timezone.localtime(notice.disable_at).strftime("%Y-%m-%d %H:%M %Z")
    assert f"disabled at {when} if nothing changes" in crm and "1 missed" in crm
    assert "endpoint-notice-line" not in shop


def test_a_recovered_endpoint_keeps_its_history_without_the_failing_box(
    portal, receiver, broker, django_capture_on_commit_callbacks
):
    receiver.script("/hook", Reply(500), Reply(200))
    endpoint = tenant_endpoint(TENANT, receiver.url("/hook"))
    fail_once(endpoint, django_capture_on_commit_callbacks)
    fail_once(endpoint, django_capture_on_commit_callbacks)  # this one succeeds

    page = portal.get(portal_url("endpoint", endpoint.pk)).content.decode()

    assert 'id="endpoint-notice"' not in page
    history = page.split('id="endpoint-notices"', 1)[1]
    assert "Recovered" in history and "Failing" in history


def test_another_tenants_notices_never_show(portal, django_capture_on_commit_callbacks):
    from deliveries.services import notices

    started = timezone.now() - dt.timedelta(minutes=5)
    theirs = tenant_endpoint("globex", "http://127.0.0.1:9/theirs", failing_since=started)
    notices.endpoint_failing(theirs, started)
    mine = tenant_endpoint(TENANT, "http://127.0.0.1:9/mine")

    assert portal.get(portal_url("endpoint", theirs.pk)).status_code == 404
    page = portal.get(portal_url("endpoint", mine.pk)).content.decode()
    listing = portal.get(portal_url("endpoints")).content.decode()
    assert "endpoint-notice" not in page and "endpoint-notice" not in listing
