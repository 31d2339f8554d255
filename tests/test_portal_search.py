"""The portal's delivery-log search (issue 28 item 2, issue 22 items 2 and 3): the event type
as endpoints subscribe (`invoice.*`, `*`), several statuses, response status, a JSON filter,
the three empty states, and "Retry the matches" with its count first, for one tenant only."""

from __future__ import annotations

import html
import json
import re

import pytest

from deliveries.models import BulkRetry, Delivery, DeliveryStatus
from tests.portal_helpers import portal_url
from tests.search_helpers import endpoint, logged

pytestmark = pytest.mark.django_db

TENANT = "acme"



def page(response) -> str:
    return response.content.decode()


def shown(portal, **query) -> list[int]:
    response = portal.get(portal_url("deliveries"), query)
    assert response.status_code == 200, page(response)
    return [int(pk) for pk in re.findall(r'data-delivery="(\d+)"', page(response))]


def test_event_type_filter_accepts_the_wildcards_endpoints_use(portal):
    sub = endpoint(TENANT)
    paid = logged(sub, "invoice.paid")
    created = logged(sub, "invoice.created", minutes=1)
    order = logged(sub, "order.created", minutes=2)
    assert shown(portal, type="invoice.paid") == [paid.pk]
    assert shown(portal, type="invoice.*") == [created.pk, paid.pk]
    assert shown(portal, type="*") == [order.pk, created.pk, paid.pk]


def test_several_statuses_response_status_and_json_filter(portal):
    sub = endpoint(TENANT)
    failed = logged(sub, code=503, data={"amount": 500})
    skipped = logged(sub, status=DeliveryStatus.SKIPPED, code=None, data={"amount": 700}, minutes=1)
    logged(sub, status=DeliveryStatus.SUCCEEDED, code=200, data={"amount": 900}, minutes=2)
    assert shown(portal, status=["failed", "skipped"]) == [skipped.pk, failed.pk]
    assert shown(portal, response_status=503) == [failed.pk]
    assert shown(portal, filter=json.dumps({"data.amount": {"$lt": 600}})) == [failed.pk]


def test_empty_state_nothing_yet(portal):
    response = portal.get(portal_url("deliveries"))
    assert 'id="empty-nothing-yet"' in page(response)
    assert "empty-no-match" not in page(response)


def test_empty_state_nothing_matches_links_to_clear_it(portal):
    logged(endpoint(TENANT), "order.created")
    response = portal.get(portal_url("deliveries"), {"type": "invoice.*"})
    body = page(response)
    assert response.status_code == 200
    assert 'id="empty-no-match"' in body and "empty-nothing-yet" not in body
    clear = re.search(r'id="empty-no-match".*?<a href="([^"]+)">', body, re.S).group(1)
    assert clear == portal_url("deliveries")
    # Another tenant's deliveries do not make acme's log "not empty".
    other = endpoint("globex", "http://127.0.0.1:9/g")
    Delivery.objects.filter(subscription__tenant_id=TENANT).delete()
    logged(other, "order.created")
    assert 'id="empty-nothing-yet"' in page(portal.get(portal_url("deliveries"), {"type": "x"}))


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ({"type": "invoice.*.paid"}, "prefix wildcard"),
        ({"filter": "{nope"}, "Not JSON"),
        ({"filter": json.dumps({"data.a": {"$regex": "x"}})}, "$regex"),
        ({"response_status": "99"}, "100"),
    ],
)
def test_empty_state_invalid_filter_shows_the_error(portal, query, error):
    logged(endpoint(TENANT))
    response = portal.get(portal_url("deliveries"), query)
    body = html.unescape(page(response))
    assert response.status_code == 400
    notice = re.search(r'id="empty-invalid".*?</div>', body, re.S).group(0)
    assert error in notice, notice
    assert "No deliveries yet" not in body and "empty-no-match" not in body


def test_retry_the_matches_shows_the_count_then_retries_this_tenants_only(portal, broker):
    sub = endpoint(TENANT)
    mine = [logged(sub, "invoice.paid", minutes=i) for i in range(2)]
    order = logged(sub, "order.created", minutes=3)
    theirs = logged(endpoint("globex", "http://127.0.0.1:9/g"), "invoice.paid")
    log = page(portal.get(portal_url("deliveries"), {"type": "invoice.*"}))
    link = html.unescape(re.search(r'id="retry-matches" href="([^"]+)"', log).group(1))
    assert link == portal_url("deliveries-retry") + "?type=invoice.%2A"
    confirm = portal.get(link)
    assert confirm.status_code == 200
    assert "2 deliveries match your search" in page(confirm)
    assert [Delivery.objects.get(pk=d.pk).status for d in mine] == ["failed", "failed"]
    done = portal.post(link)
    assert done.status_code == 302 and done["Location"].endswith("?type=invoice.%2A")
    after = [Delivery.objects.get(pk=d.pk).status for d in (*mine, order, theirs)]
    assert after == ["retrying", "retrying", "failed", "failed"]
    record = BulkRetry.objects.get()
    assert (record.tenant, record.source, record.matched, record.queued) == (
        TENANT,
        "portal",
        2,
        2,
    )
    # Twice: nothing more is queued.
    portal.post(link)
    assert BulkRetry.objects.order_by("-pk").first().queued == 0


def test_retry_the_matches_never_counts_another_tenants_endpoint(portal, broker):
    theirs = logged(endpoint("globex", "http://127.0.0.1:9/g"))
    logged(endpoint(TENANT))
    url = portal_url("deliveries-retry") + f"?endpoint={theirs.subscription_id}"
    # Their endpoint is not one of acme's choices: the search is invalid, back to the log.
    assert portal.get(url).status_code == 302
    portal.post(url)
    assert Delivery.objects.get(pk=theirs.pk).status == "failed"
    assert "1 delivery matches" in page(portal.get(portal_url("deliveries-retry")))


def test_retry_the_matches_over_the_cap_says_so(portal, broker, webhooks):
    webhooks(BULK_RETRY_MAX=1)
    sub = endpoint(TENANT)
    logged(sub)
    logged(sub, minutes=1)
    response = portal.get(portal_url("deliveries-retry"))
    assert response.status_code == 400 and 'id="bulk-retry-problem"' in page(response)
    assert "More than 1 deliveries match" in page(response)
