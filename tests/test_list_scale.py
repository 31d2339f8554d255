"""Every list page costs the same with 10 rows of history and with 1,000: the same number of
queries (no query per row, no page that grows with the table), no COUNT over the table on the
history lists, and a deep keyset page reads only its own rows (PostgreSQL: EXPLAIN ANALYZE)."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from deliveries.models import Delivery, DeliveryAttempt, DeliveryStatus, Event
from subscriptions.models import Subscription, Tenant
from tests.factories import make_user
from tests.portal_helpers import open_portal, portal_url

pytestmark = pytest.mark.django_db

TENANT = "acme"
STATUSES = [
    DeliveryStatus.SUCCEEDED,
    DeliveryStatus.SUCCEEDED,
    DeliveryStatus.FAILED,
    DeliveryStatus.RETRYING,
    DeliveryStatus.PENDING,
]


def grow(total: int) -> None:
    """History until there are `total` deliveries (and events, attempts, endpoints, tenants
    that grow with them), half of it in TENANT, spread over 20 days, newest now."""
    have = Delivery.objects.count()
    if have >= total:
        return
    tenant = Tenant.objects.for_key(TENANT)
    other = Tenant.objects.for_key(f"t{total}")
    now = timezone.now()
    endpoints = Subscription.objects.bulk_create(
        Subscription(
            url=f"https://hooks{total}-{i}.example.com/in",
            event_types=["*"],
            tenant=tenant if i % 2 else other,
        )
        for i in range(max(2, (total - have) // 10))
    )
    events, deliveries = [], []
    for n in range(have, total):
        at = now - dt.timedelta(minutes=(total - n) * 29)
        sub = endpoints[n % len(endpoints)]
        events.append(Event(type="order.created", data={"n": n}, tenant=sub.tenant, created_at=at))
    Event.objects.bulk_create(events)
    for n, event in enumerate(events):
        status = STATUSES[n % len(STATUSES)]
        deliveries.append(
            Delivery(
                event=event,
                subscription=endpoints[(have + n) % len(endpoints)],
                status=status,
                attempts=1,
                last_status_code=200 if status == DeliveryStatus.SUCCEEDED else 500,
                next_attempt_at=event.created_at
                if status in (DeliveryStatus.PENDING, DeliveryStatus.RETRYING)
                else None,
                created_at=event.created_at,
            )
        )
    Delivery.objects.bulk_create(deliveries)
    DeliveryAttempt.objects.bulk_create(
        DeliveryAttempt(
            delivery=d,
            number=1,
            started_at=d.created_at,
            duration_ms=120,
            response_status=d.last_status_code,
        )
        for d in deliveries
    )


@pytest.fixture
def clients(client: Any, admin_user: Any) -> dict[str, Any]:
    """An operator in the admin and the API, a tenant user in the API, a portal customer."""
    admin = client
    admin.force_login(admin_user)
    api_operator = APIClient()
    api_operator.force_authenticate(admin_user)
    api_tenant = APIClient()
    api_tenant.force_authenticate(make_user("tenant-user", tenant=TENANT))
    from django.test import Client

    portal = Client()
    open_portal(portal, TENANT)
    return {"admin": admin, "api": api_operator, "tenant": api_tenant, "portal": portal}


def admin_list(name: str, **query: str) -> tuple[str, str, dict]:
    return ("admin", reverse(f"admin:{name}_changelist"), query)


PAGES: dict[str, tuple[str, str, dict]] = {
    "admin deliveries": admin_list("deliveries_delivery"),
    "admin deliveries failed": admin_list("deliveries_delivery", status__exact="failed"),
    "admin deliveries of a tenant": admin_list("deliveries_delivery", tenant=TENANT),
    "admin deliveries searched by url": admin_list("deliveries_delivery", q="example.com"),
    "admin events": admin_list("deliveries_event"),
    "admin subscriptions": admin_list("webhook_subscriptions_subscription"),
    "admin subscriptions searched": admin_list("webhook_subscriptions_subscription", q="hooks"),
    "admin tenants": admin_list("webhook_subscriptions_tenant"),
    "admin dashboard": ("admin", "/admin/deliveries/delivery/dashboard/", {}),
    "api deliveries": ("api", "/api/deliveries/", {}),
    "api deliveries failed": ("api", "/api/deliveries/", {"status": "failed"}),
    "api events": ("api", "/api/events/", {}),
    "api subscriptions": ("api", "/api/subscriptions/", {}),
    "api tenants": ("api", "/api/tenants/", {}),
    "tenant api deliveries": ("tenant", "/api/deliveries/", {}),
    "tenant api events": ("tenant", "/api/events/", {}),
    "tenant api subscriptions": ("tenant", "/api/subscriptions/", {}),
    "portal deliveries": ("portal", "deliveries", {}),
    "portal deliveries failed": ("portal", "deliveries", {"status": "failed"}),
    "portal endpoints": ("portal", "endpoints", {}),
}


def fetch(clients: dict[str, Any], page: str) -> Any:
    who, path, query = PAGES[page]
    if who == "portal":
        path = portal_url(path)
    response = clients[who].get(path, query)
    assert response.status_code == 200, (page, response.content[:500])
    return response


def queries_of(call: Callable[[], Any]) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        call()
    return [q["sql"] for q in captured.captured_queries]


@pytest.mark.parametrize("page", sorted(PAGES))
def test_a_list_page_runs_as_many_queries_with_1000_rows_as_with_10(clients, page):
    grow(10)
    fetch(clients, page)  # warm: sessions, content types, permission caches
    small = queries_of(lambda: fetch(clients, page))
    grow(1000)
    fetch(clients, page)
    large = queries_of(lambda: fetch(clients, page))

    assert len(large) == len(small), "\n".join(large)


HISTORY_LISTS = [
    "admin deliveries",
    "admin deliveries failed",
    "admin events",
    "api deliveries",
    "api events",
    "tenant api deliveries",
    "portal deliveries",
]


@pytest.mark.parametrize("page", HISTORY_LISTS)
def test_a_history_list_counts_nothing(clients, page):
    grow(200)
    fetch(clients, page)
    sql = queries_of(lambda: fetch(clients, page))

    counting = [q for q in sql if "COUNT(" in q.upper()]
    assert not counting, counting


def test_the_history_pages_say_nothing_of_totals_and_link_older_rows(clients):
    grow(120)

    admin = fetch(clients, "admin deliveries").content.decode()
    api = fetch(clients, "api deliveries").json()
    portal = fetch(clients, "portal deliveries").content.decode()

    assert 'rel="next"' in admin and "120 deliveries" not in admin and "date_hierarchy" not in admin
    assert set(api) == {"next", "previous", "results"}
    assert "cursor=" in api["next"]
    assert 'rel="next"' in portal


def test_walking_the_api_by_cursor_returns_every_row_once_in_order(clients):
    grow(230)
    seen: list[int] = []
    url: str | None = "/api/deliveries/?limit=50"
    while url:
        body = clients["api"].get(url).json()
        seen += [row["id"] for row in body["results"]]
        url = body["next"]

    expected = list(Delivery.objects.order_by("-created_at", "-pk").values_list("pk", flat=True))
    assert seen == expected


def test_the_api_refuses_offset_on_a_keyset_list(clients):
    response = clients["api"].get("/api/deliveries/", {"offset": 100})

    assert response.status_code == 400
    assert "offset" in response.json()


def test_the_admin_endpoint_filter_takes_an_id_not_a_list_of_every_endpoint(clients):
    grow(300)
    endpoint = Subscription.objects.filter(tenant_id=TENANT).first()
    url = reverse("admin:deliveries_delivery_changelist")

    page = clients["admin"].get(url).content.decode()
    filtered = clients["admin"].get(url, {"subscription__id__exact": str(endpoint.pk)})
    bad = clients["admin"].get(url, {"subscription__id__exact": "not-an-id"})

    # Not one link per endpoint in the filter sidebar: only the rows' own cells name endpoints.
    sidebar = page.split('id="changelist-filter"', 1)[1]
    assert "hooks300-" not in sidebar
    assert 'name="subscription__id__exact"' in sidebar
    rows = filtered.context["cl"].result_list
    assert rows and {d.subscription_id for d in rows} == {endpoint.pk}
    assert bad.status_code == 302 and "e=1" in bad["Location"]  # the admin's "bad filter"


def test_admin_search_finds_a_delivery_by_event_id_and_by_its_own_id(clients):
    grow(50)
    delivery = Delivery.objects.order_by("pk")[7]
    url = reverse("admin:deliveries_delivery_changelist")

    by_event = clients["admin"].get(url, {"q": str(delivery.event_id)}).context["cl"].result_list
    by_id = clients["admin"].get(url, {"q": f"#{delivery.pk}"}).context["cl"].result_list
    by_url = clients["admin"].get(url, {"q": delivery.subscription.url[8:20]})

    assert [d.pk for d in by_event] == [d.pk for d in by_id] == [delivery.pk]
    assert delivery.pk in {d.pk for d in by_url.context["cl"].result_list}


def test_the_portal_endpoint_filter_is_a_select_only_for_few_endpoints(clients):
    grow(10)
    few = fetch(clients, "portal deliveries").content.decode()
    Subscription.objects.bulk_create(
        Subscription(url=f"https://many{i}.example.com/", event_types=["*"], tenant_id=TENANT)
        for i in range(101)
    )
    many = fetch(clients, "portal deliveries").content.decode()

    assert '<select name="endpoint"' in few
    assert '<select name="endpoint"' not in many and 'name="endpoint"' in many
    assert "many7.example.com" not in many


def test_the_portal_refreshes_unfinished_rows_with_an_etag(clients):
    grow(10)
    unfinished = list(
        Delivery.objects.filter(subscription__tenant_id=TENANT)
        .unfinished()
        .values_list("pk", flat=True)
    )
    ids = ",".join(map(str, unfinished))
    portal = clients["portal"]
    log = fetch(clients, "portal deliveries").content.decode()

    first = portal.get(portal_url("delivery-rows"), {"ids": ids})
    again = portal.get(portal_url("delivery-rows"), {"ids": ids}, HTTP_IF_NONE_MATCH=first["ETag"])
    Delivery.objects.filter(pk=unfinished[0]).update(status=DeliveryStatus.SUCCEEDED, attempts=2)
    changed = portal.get(
        portal_url("delivery-rows"), {"ids": ids}, HTTP_IF_NONE_MATCH=first["ETag"]
    )

    assert unfinished and 'data-poll="' in log
    assert all(f'data-delivery="{pk}" data-unfinished' in log for pk in unfinished)
    assert first.status_code == 200 and set(first.json()["rows"]) == set(ids.split(","))
    assert again.status_code == 304 and again.content == b""
    assert changed.status_code == 200 and changed["ETag"] != first["ETag"]
    assert unfinished[0] not in changed.json()["unfinished"]
    assert "data-unfinished" not in changed.json()["rows"][str(unfinished[0])]


# --- PostgreSQL: what the database really reads ------------------------------------------


def rows_read(plan: dict, table: str) -> int:
    """Rows the plan's scans of `table` returned (actual rows times loops), summed."""
    total = 0
    stack = [plan["Plan"]]
    while stack:
        node = stack.pop()
        if node.get("Relation Name") == table:
            total += node["Actual Rows"] * node.get("Actual Loops", 1)
        stack.extend(node.get("Plans", []))
    return total


@pytest.mark.skipif(connection.vendor != "postgresql", reason="EXPLAIN of PostgreSQL")
def test_a_deep_cursor_page_reads_only_its_own_rows(clients):
    grow(3000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE webhooks_delivery")
    url = "/api/deliveries/?limit=50"
    for _ in range(40):  # 2,000 rows deep
        url = clients["api"].get(url).json()["next"]

    sql = queries_of(lambda: clients["api"].get(url))
    [page] = [q for q in sql if re.search(r'FROM "webhooks_delivery"', q) and "LIMIT" in q]
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + page)
        raw = cursor.fetchone()[0]
    plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]

    assert "OFFSET" not in page and "COUNT(" not in page.upper()
    # The page and the one row that says there is a next page; a few more at most when the
    # planner reads ahead to the tie-breaking sort, never the 2,000 rows before the page.
    assert rows_read(plan, "webhooks_delivery") <= 60, json.dumps(plan, indent=1)[:3000]
