"""Errors people read: each failed attempt has a one-line summary by its ErrorKind, shown in the
portal's and the admin's lists and in notices; the raw detail only on the delivery's own page.
Real failures: a closed port on 127.0.0.1 (connection refused) and a receiver answering 503.
Also the portal's no-access page (how to get in; a login link only when LOGIN_URL resolves)."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from deliveries.models import DeliveryAttempt, DeliveryStatus, ErrorKind
from deliveries.services import attempt_delivery
from deliveries.summaries import summarize
from tests.factories import make_subscription, make_tenant_user
from tests.ops_helpers import make_delivery
from tests.portal_helpers import portal_url
from tests.procs import free_port
from tests.receiver import Reply

pytestmark = pytest.mark.django_db

TENANT = "acme"


@pytest.mark.parametrize(
    ("kind", "status", "error", "url", "expected"),
    [
        (ErrorKind.HTTP_STATUS, 503, "", "https://hooks.example.com/x", "Receiver answered 503"),
        (
            ErrorKind.CONNECTION,
            None,
            "ConnectionError: TrackedHTTPPool(host='127.0.0.1', port=9000): Max retries "
            "exceeded (Caused by NewConnectionError('...: Failed to establish a new connection:"
            " [Errno 111] Connection refused'))",
            "http://127.0.0.1:9000/hook",
            "Connection refused by 127.0.0.1:9000",
        ),
        (
            ErrorKind.TIMEOUT,
            None,
            "No complete answer within 15 s.",
            "https://h.example/",
            "No response within 15 s",
        ),
        (
            ErrorKind.CONNECTION,
            None,
            "SSLError: HTTPSConnectionPool(...): [SSL: CERTIFICATE_VERIFY_FAILED] certificate "
            "verify failed: Hostname mismatch, certificate is not valid for 'hooks.example.com'",
            "https://hooks.example.com/x",
            "TLS certificate not valid for hooks.example.com",
        ),
        (
            ErrorKind.CONNECTION,
            None,
            "NameResolutionError: ...",
            "https://nope.example/x",
            "Host name nope.example not found",
        ),
        (
            ErrorKind.CONNECTION,
            None,
            "RemoteDisconnected('Remote end closed')",
            "https://h.example/x",
            "Connection closed by h.example:443 before a full answer",
        ),
        (
            ErrorKind.CONNECTION,
            None,
            "OSError: something new",
            "http://[::1]:8080/x",
            "Could not connect to [::1]:8080",
        ),
        (
            ErrorKind.PROTOCOL,
            None,
            "BadStatusLine",
            "https://h.example/",
            "Receiver's answer is not valid HTTP",
        ),
        (
            ErrorKind.BLOCKED,
            None,
            "blocked",
            "http://10.0.0.1/x",
            "Destination refused: 10.0.0.1 is a private or reserved address",
        ),
        (
            ErrorKind.INTERRUPTED,
            None,
            "",
            "https://h.example/",
            "Worker stopped during the attempt; it is retried",
        ),
        (
            ErrorKind.INTERNAL,
            None,
            "TypeError: boom",
            "https://h.example/",
            "Internal error while sending; it is retried",
        ),
        (ErrorKind.NONE, 200, "", "https://h.example/", ""),
    ],
)
def test_each_error_kind_has_a_one_line_summary(settings, kind, status, error, url, expected):
    settings.WEBHOOKS = {**settings.WEBHOOKS, "TIMEOUT": 15}
    summary = summarize(kind, status, error, url)

    assert summary == expected
    assert "\n" not in summary and len(summary) < 100


@pytest.fixture
def failures(receiver):
    """Two real failures of one tenant's endpoints: refused (a closed port), and a 503."""
    closed = make_subscription(f"http://127.0.0.1:{free_port()}/hook", tenant=TENANT)
    receiver.script("/busy", Reply(503, body=b"busy"))
    busy = make_subscription(receiver.url("/busy"), tenant=TENANT)
    made = []
    for sub in (closed, busy):
        delivery = make_delivery(sub, DeliveryStatus.PENDING, next_attempt_at=timezone.now())
        attempt_delivery(delivery.pk, 1)
        delivery.refresh_from_db()
        made.append(delivery)
    return made


def test_the_portal_list_shows_summaries_and_the_delivery_page_the_detail(client, failures):
    refused, _busy = failures
    raw = DeliveryAttempt.objects.get(delivery=refused).error
    assert "Errno 111" in raw or "refused" in raw  # the real raw detail
    port = refused.subscription.url.split(":")[2].split("/")[0]
    client.force_login(make_tenant_user("ann", TENANT))

    listing = client.get(portal_url("deliveries")).content.decode()
    endpoint = client.get(portal_url("endpoint", refused.subscription_id)).content.decode()
    detail = client.get(portal_url("delivery", refused.pk)).content.decode()

    for page in (listing, endpoint):
        assert f"Connection refused by 127.0.0.1:{port}" in page
        assert "TrackedHTTPPool" not in page and "Errno" not in page
    assert "Receiver answered 503" in listing
    assert "Errno 111" in detail or "Connection refused&#x27;" in detail  # raw, on its page
    assert "Every custom header value is masked" in detail  # the help says what is masked


def test_the_admin_list_shows_summaries_and_the_delivery_page_the_detail(
    admin_client, failures, django_assert_max_num_queries
):
    refused, _busy = failures

    with django_assert_max_num_queries(12):
        listing = admin_client.get(reverse("admin:deliveries_delivery_changelist"))
    page = admin_client.get(reverse("admin:deliveries_delivery_change", args=[refused.pk]))

    text = listing.content.decode()
    assert "Connection refused by 127.0.0.1:" in text and "Receiver answered 503" in text
    assert "TrackedHTTPPool" not in text
    detail = page.content.decode()
    assert "Connection refused by 127.0.0.1:" in detail  # the attempt's row
    assert "TrackedHTTPPool" in detail  # and its raw detail


def test_the_list_query_count_does_not_grow_with_rows(
    client, receiver, django_assert_max_num_queries
):
    sub = make_subscription(receiver.url("/x"), tenant=TENANT)
    client.force_login(make_tenant_user("ann", TENANT))

    def count() -> int:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as queries:
            assert client.get(portal_url("deliveries")).status_code == 200
        return len(queries)

    make_delivery(sub, DeliveryStatus.FAILED, attempts=[(500, 10)])
    few = count()
    for _ in range(5):
        make_delivery(sub, DeliveryStatus.FAILED, attempts=[(None, 10), (503, 10)])
    assert count() == few


# --- 9. the no-access page ------------------------------------------------------------------


def test_the_no_access_page_says_to_ask_for_a_link_and_links_a_login_that_exists(client):
    page = client.get(portal_url("endpoints"))

    assert page.status_code == 403
    assert "Ask the support team of that product for a portal link" in page.content.decode()
    assert "/admin/login/?next=/portal/endpoints/" in page.content.decode()


@pytest.mark.parametrize("login_url", ["/accounts/login/", "no-such-route"])
def test_the_no_access_page_offers_no_dead_login_link(client, settings, login_url):
    settings.LOGIN_URL = login_url  # Django's default path, which a new project lacks

    page = client.get(portal_url("endpoints")).content.decode()

    assert "Ask the support team" in page
    assert "Log in" not in page and "accounts/login" not in page


def test_a_login_url_on_another_site_is_kept(client, settings):
    settings.LOGIN_URL = "https://sso.example.com/login"

    page = client.get(portal_url("endpoints")).content.decode()

    assert "https://sso.example.com/login?next=" in page
