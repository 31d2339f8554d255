"""Bulk retry of what a search matches (`POST /api/deliveries/retry/`, the admin's "Retry the
matching deliveries"): dry run, queueing through the real broker, the cap, the throttle, the
record, twice being harmless, and tenant isolation."""

from __future__ import annotations

import pytest
from django.urls import reverse

from deliveries.models import BulkRetry, Delivery, DeliveryStatus
from deliveries.services.bulk_retry import TooManyMatches, bulk_retry
from deliveries.services.logsearch import DeliverySearch
from tests.factories import api_client, make_tenant_user, make_user
from tests.ops_helpers import queue_length
from tests.search_helpers import endpoint, logged

pytestmark = pytest.mark.django_db

RETRY = "/api/deliveries/retry/"


def statuses(*rows: Delivery) -> list[str]:
    return [Delivery.objects.get(pk=row.pk).status for row in rows]


@pytest.fixture
def operator():
    return make_user("operator", "view_delivery", "change_delivery")


def test_dry_run_counts_and_changes_nothing(operator, broker):
    sub = endpoint("acme")
    failed = [logged(sub, "invoice.paid", minutes=i) for i in range(3)]
    logged(sub, "order.created", minutes=5)
    logged(sub, "invoice.paid", DeliveryStatus.SUCCEEDED, code=200, minutes=6)
    client = api_client(operator)
    response = client.post(RETRY, {"type": "invoice.*", "dry_run": True}, format="json")
    assert response.status_code == 200 and response.json() == {"count": 3}
    assert statuses(*failed) == ["failed"] * 3
    assert queue_length("webhooks.retry") == 0 and not BulkRetry.objects.exists()


def test_retry_queues_the_matches_once_and_records_it(operator, broker):
    sub = endpoint("acme")
    failed = [logged(sub, "invoice.paid", minutes=i) for i in range(3)]
    other = logged(sub, "order.created", minutes=5)
    client = api_client(operator)
    response = client.post(RETRY, {"type": "invoice.*", "status": "failed"}, format="json")
    assert response.status_code == 202, response.content
    assert response.json() == {"count": 3, "queued": 3}
    assert statuses(*failed) == ["retrying"] * 3 and statuses(other) == ["failed"]
    assert queue_length("webhooks.retry") == 3  # attempt 2 of each, on the retry queue
    record = BulkRetry.objects.get()
    assert (record.user, record.username, record.source) == (operator, "operator", "api")
    assert (record.matched, record.queued, record.tenant) == (3, 3, "")
    assert record.criteria == {"status": ["failed"], "event_type": "invoice.*"}

    # Clicking twice: the same search now matches nothing (they are queued, not failed)...
    again = client.post(RETRY, {"type": "invoice.*", "status": "failed"}, format="json")
    assert again.json() == {"count": 0, "queued": 0}
    # ...and a search that does match them (retrying) queues nothing more: already queued.
    retrying = client.post(RETRY, {"type": "invoice.*", "status": ["retrying"]}, format="json")
    assert retrying.json() == {"count": 3, "queued": 0}
    assert queue_length("webhooks.retry") == 3


def test_default_statuses_are_what_an_outage_leaves_undelivered(operator, broker):
    sub = endpoint("acme")
    rows = {
        status: logged(sub, status=status, minutes=i)
        for i, status in enumerate(["failed", "discarded", "skipped", "succeeded", "sending"])
    }
    response = api_client(operator).post(RETRY, {}, format="json")
    assert response.json() == {"count": 3, "queued": 3}
    assert statuses(*rows.values()) == ["retrying"] * 3 + ["succeeded", "sending"]


def test_a_status_a_retry_may_not_select_is_a_400(operator):
    response = api_client(operator).post(RETRY, {"status": ["sending"]}, format="json")
    assert response.status_code == 400 and "status" in response.json()
    response = api_client(operator).post(RETRY, {"since": "2026-01-01T00:00:00"}, format="json")
    assert response.status_code == 400 and "since" in response.json()


def test_disabled_endpoints_and_deliveries_in_flight_are_left_alone(operator, broker):
    off = logged(endpoint("acme", is_active=False))
    live = logged(endpoint("acme", "http://127.0.0.1:9/live"), minutes=1)
    response = api_client(operator).post(RETRY, {"status": ["failed"]}, format="json")
    assert response.json() == {"count": 2, "queued": 1}
    assert statuses(off, live) == ["failed", "retrying"]


def test_cap_refuses_a_search_matching_more(operator, broker, webhooks):
    webhooks(BULK_RETRY_MAX=2)
    sub = endpoint("acme")
    rows = [logged(sub, minutes=i) for i in range(3)]
    client = api_client(operator)
    for body in ({"dry_run": True}, {}):
        response = client.post(RETRY, body, format="json")
        assert response.status_code == 400
        assert "BULK_RETRY_MAX" in response.json()["non_field_errors"][0]
    assert statuses(*rows) == ["failed"] * 3
    narrower = client.post(RETRY, {"subscription": str(sub.pk), "until": "2026-03-01T12:02:00Z"})
    assert narrower.json() == {"count": 2, "queued": 2}
    with pytest.raises(TooManyMatches):
        bulk_retry(Delivery.objects.all(), DeliverySearch(statuses=("retrying", "failed")))


def test_bulk_retry_is_throttled_per_user(operator, broker, webhooks):
    webhooks(THROTTLE_RATES={"bulk_retry": "2/hour"})
    client = api_client(operator)
    codes = [client.post(RETRY, {"dry_run": True}, format="json").status_code for _ in range(3)]
    assert codes == [200, 200, 429]


def test_a_tenant_user_never_counts_or_retries_another_tenants_deliveries(broker):
    mine = [logged(endpoint("acme"), minutes=i) for i in range(2)]
    theirs = [logged(endpoint("globex", "http://127.0.0.1:9/g"), minutes=i) for i in range(3)]
    alice = api_client(make_tenant_user("alice", "acme"))
    assert alice.post(RETRY, {"dry_run": True}, format="json").json() == {"count": 2}
    # Naming the other tenant, or its endpoint, reaches nothing of it.
    named = alice.post(RETRY, {"tenant": "globex"}, format="json")
    assert named.status_code == 400 and "tenant" in named.json()
    by_endpoint = {"subscription": str(theirs[0].subscription_id)}
    assert alice.post(RETRY, by_endpoint, format="json").json() == {"count": 0, "queued": 0}
    assert alice.post(RETRY, {}, format="json").json() == {"count": 2, "queued": 2}
    assert statuses(*mine) == ["retrying"] * 2 and statuses(*theirs) == ["failed"] * 3
    assert BulkRetry.objects.filter(tenant="acme", username="alice").count() == 2


def test_a_user_without_tenant_or_permission_is_refused(broker):
    logged(endpoint("acme"))
    nobody = api_client(make_user("nobody"))
    assert nobody.post(RETRY, {"dry_run": True}, format="json").status_code == 403
    reader = api_client(make_user("reader", "view_delivery"))
    assert reader.post(RETRY, {"dry_run": True}, format="json").status_code == 403


# --- the admin -------------------------------------------------------------------------------


@pytest.fixture
def admin_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("root", password="pw")
    client.force_login(user)
    return client


def test_admin_retry_matching_shows_the_count_then_retries_the_filtered_list(admin_client, broker):
    sub = endpoint("acme")
    paid = [logged(sub, "invoice.paid", minutes=i) for i in range(2)]
    order = logged(sub, "order.created", minutes=3)
    url = reverse("admin:deliveries_delivery_retry_matching")
    changelist = admin_client.get(
        reverse("admin:deliveries_delivery_changelist") + "?event__type=invoice.*"
    )
    assert changelist.status_code == 200
    assert (
        f"{url}?event__type=invoice.%2A".encode() in changelist.content.replace(b"&amp;", b"&")
        or f"{url}?event__type=invoice.*".encode() in changelist.content
    )
    confirm = admin_client.get(url + "?event__type=invoice.*&status__exact=failed")
    assert confirm.status_code == 200
    assert b"2 deliveries match these filters" in confirm.content
    assert statuses(*paid, order) == ["failed"] * 3
    done = admin_client.post(url + "?event__type=invoice.*&status__exact=failed")
    assert done.status_code == 302 and "event__type=invoice" in done["Location"]
    assert statuses(*paid, order) == ["retrying", "retrying", "failed"]
    record = BulkRetry.objects.get()
    assert record.source == "admin" and record.matched == 2 and record.queued == 2
    assert record.criteria["admin_filters"] == {
        "event__type": ["invoice.*"],
        "status__exact": ["failed"],
    }
    # The record is read-only in the admin.
    page = admin_client.get(reverse("admin:deliveries_bulkretry_change", args=[record.pk]))
    assert page.status_code == 200 and b'name="matched"' not in page.content
    assert admin_client.get(reverse("admin:deliveries_bulkretry_add")).status_code == 403


def test_admin_response_status_and_json_filter(admin_client):
    sub = endpoint("acme")
    bad = logged(sub, code=500, data={"amount": 500})
    logged(sub, code=503, data={"amount": 5}, minutes=1)
    changelist = reverse("admin:deliveries_delivery_changelist")
    page = admin_client.get(changelist + "?last_status_code=500")
    assert list(page.context["cl"].result_list) == [bad]
    page = admin_client.get(changelist + '?filter={"data.amount":{"$gte":100}}')
    assert list(page.context["cl"].result_list) == [bad]
    assert admin_client.get(changelist + "?last_status_code=999").status_code == 302


def test_admin_retry_needs_the_change_permission(client, broker):
    viewer = make_user("viewer", "view_delivery", is_staff=True)
    client.force_login(viewer)
    assert client.get(reverse("admin:deliveries_delivery_retry_matching")).status_code == 403
