#!/usr/bin/env python
"""Delivery-log search bench (issue 22): does a search over 1,000,000 deliveries, one tenant
holding 100,000 of them, answer in under 300 ms on PostgreSQL?

    createdb -h 127.0.0.1 -U postgres webhooks_search
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/webhooks_search \\
        python bench/logsearch.py seed --deliveries 1000000
    DATABASE_URL=... python bench/logsearch.py measure --output bench/results/logsearch-1m.md

seed: the scale bench's history (bench/scale.py seed: 100 tenants, "big" with 10% of every
table, a month of deliveries, statuses and answers as in production, set-based SQL), then gives
the events the variety a search needs: 10 types in three families (`order.*`, `invoice.*`,
`customer.*`, one of them two levels deep) and `data` with an `amount` (0 to 999) and a
`currency` (EUR, USD, GBP), then VACUUM ANALYZE.

measure: each search through the API in-process (Django's test client: the application's time
and the database's, no HTTP server), as a tenant user of "big" and as an operator; one warm-up,
then RUNS runs; p50 and p95 in ms, the rows answered, and the plan of its SQL (EXPLAIN ANALYZE):
the indexes it used, and whether it read the delivery table sequentially (it must not). A
bulk-retry dry run (a capped count) is measured the same way. Prints a Markdown table and writes
it, with every plan, to --output.
"""

# The search table in run_measure() reads best one search per line.
# ruff: noqa: E501
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

RUNS = 20
BIG = "big"
# The event types the seed spreads over the events, by a hash of the event id.
TYPES = [
    "order.created",
    "order.paid",
    "order.shipped",
    "invoice.created",
    "invoice.paid",
    "invoice.line.added",
    "customer.created",
    "customer.updated",
    "customer.deleted",
    "order.refunded",
]


def seed(deliveries: int) -> None:
    from bench import scale

    scale.seed(deliveries)
    vary()


def vary() -> None:
    """Spread the seeded events over TYPES and give them an amount and a currency."""
    import django

    django.setup()
    from django.db import connection

    started = time.perf_counter()
    cases = " ".join(f"WHEN {i} THEN '{name}'" for i, name in enumerate(TYPES))
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE webhooks_event SET "
            f"type = CASE abs(hashtext(id::text)) % {len(TYPES)} {cases} END, "
            "data = jsonb_build_object('id', data->'id', "
            "'amount', abs(hashtext('a' || id::text)) % 1000, "
            "'currency', (ARRAY['EUR', 'USD', 'GBP'])[1 + abs(hashtext('c' || id::text)) % 3])"
        )
        cursor.execute("VACUUM ANALYZE webhooks_event")
        cursor.execute("VACUUM ANALYZE webhooks_delivery")
    print(json.dumps({"event_variety_seconds": round(time.perf_counter() - started, 1)}))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def plan_of(queryset: Any) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the page query the API runs for this search."""
    return queryset.explain(analyze=True, buffers=True)


def indexes_in(plan: str) -> list[str]:
    used = re.findall(r"Index (?:Only )?Scan(?: Backward)? using (\w+)", plan)
    used += re.findall(r"Bitmap Index Scan on (\w+)", plan)
    return sorted(set(used))


def execution_ms(plan: str) -> float | None:
    """The database's own time for the query (EXPLAIN ANALYZE's Execution Time)."""
    found = re.search(r"Execution Time: ([\d.]+) ms", plan)
    return round(float(found.group(1)), 1) if found else None


def reads_deliveries_sequentially(plan: str) -> bool:
    return re.search(r"Seq Scan on webhooks_delivery\b", plan) is not None


def run_measure(output: str | None) -> None:
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.http import QueryDict
    from rest_framework.test import APIClient

    from deliveries.models import Delivery
    from deliveries.serializers import DeliverySearchSerializer, search_input
    from deliveries.services.bulk_retry import bulk_retry
    from subscriptions.models import Subscription
    from tests.factories import make_user
    from webhooks_core.keyset import NEWEST_FIRST

    assert connection.vendor == "postgresql", "the search bench measures PostgreSQL"
    users = get_user_model().objects
    if not users.filter(username="search-operator").exists():
        users.create_superuser("search-operator", password="x")
        make_user("search-tenant", tenant=BIG)
    operator = users.get(username="search-operator")
    tenant_user = users.get(username="search-tenant")
    api = APIClient()
    api.force_authenticate(operator)
    tenant_api = APIClient()
    tenant_api.force_authenticate(tenant_user)

    newest = Delivery.objects.order_by("-created_at").values_list("created_at", flat=True)[0]
    day = newest.replace(microsecond=0) - dt.timedelta(days=14)
    window = {"since": day.isoformat(), "until": (day + dt.timedelta(days=1)).isoformat()}
    endpoint = Subscription.objects.filter(tenant_id=BIG).order_by("created_at")[5]
    big_amount = json.dumps({"data.amount": {"$gte": 990}})
    eur_over = json.dumps({"data.currency": "EUR", "data.amount": {"$gt": 500}})

    # (who, search, client, query)
    searches: list[tuple[str, str, Any, dict]] = [
        ("tenant", "log, newest page", tenant_api, {}),
        ("tenant", "status failed", tenant_api, {"status": "failed"}),
        ("tenant", "status failed,discarded,skipped", tenant_api, {"status": "failed,discarded,skipped"}),
        ("tenant", "response status 503", tenant_api, {"response_status": 503}),
        ("tenant", "one day, two weeks ago", tenant_api, window),
        ("tenant", "type invoice.*", tenant_api, {"type": "invoice.*"}),
        ("tenant", "type invoice.line.added (exact)", tenant_api, {"type": "invoice.line.added"}),
        ("tenant", "type * + status failed", tenant_api, {"type": "*", "status": "failed"}),
        ("tenant", "filter amount >= 990 (1%)", tenant_api, {"filter": big_amount}),
        ("tenant", "filter EUR and amount > 500", tenant_api, {"filter": eur_over}),
        ("tenant", "failed + invoice.* + filter", tenant_api, {"status": "failed", "type": "invoice.*", "filter": eur_over}),
        ("tenant", "failed + 503 + one day", tenant_api, {"status": "failed", "response_status": 503, **window}),
        ("tenant", "one endpoint", tenant_api, {"subscription": str(endpoint.pk)}),
        ("tenant", "one endpoint, failed", tenant_api, {"subscription": str(endpoint.pk), "status": "failed"}),
        ("tenant", "type that never occurs (empty answer)", tenant_api, {"type": "nothing.*"}),
        ("operator", "every tenant, status failed", api, {"status": "failed"}),
        ("operator", "tenant big, failed", api, {"tenant": BIG, "status": "failed"}),
        ("operator", "tenant t50, invoice.*", api, {"tenant": "t50", "type": "invoice.*"}),
        ("operator", "every tenant, filter amount >= 990", api, {"filter": big_amount}),
        ("operator", "every tenant, failed + 503 + one day", api, {"status": "failed", "response_status": 503, **window}),
    ]  # fmt: skip
    results, plans = [], []
    # Yardstick, in the same run: an authenticated API request that reads no history (what a
    # request costs on this machine at this moment, before any search).
    times = []
    tenant_api.get("/api/egress-ips/")
    for _ in range(RUNS):
        start = time.perf_counter()
        tenant_api.get("/api/egress-ips/")
        times.append((time.perf_counter() - start) * 1000)
    yardstick = statistics.median(times)
    print(json.dumps({"yardstick": "GET /api/egress-ips/", "p50_ms": round(yardstick, 1)}))
    for who, name, client, query in searches:
        path = "/api/deliveries/?" + urlencode(query)
        answer = client.get(path)
        assert answer.status_code == 200, answer.content[:300]
        times = []
        for _ in range(RUNS):
            start = time.perf_counter()
            answer = client.get(path)
            times.append((time.perf_counter() - start) * 1000)
        rows = len(answer.json()["results"])
        # The same queryset the API pages, explained.
        serializer = DeliverySearchSerializer(
            data=search_input(QueryDict(urlencode(query))),
            context={"all_tenants": who == "operator", "tenant": BIG},
        )
        serializer.is_valid(raise_exception=True)
        scoped = Delivery.objects.all() if who == "operator" else Delivery.objects.for_tenant(BIG)
        page = (
            serializer.search()
            .apply(scoped.select_related("event", "subscription"))
            .order_by(*NEWEST_FIRST)[:51]
        )
        plan = plan_of(page)
        result = {
            "who": who,
            "search": name,
            "p50_ms": round(statistics.median(times), 1),
            "p95_ms": round(percentile(times, 0.95), 1),
            "rows": rows,
            "db_ms": execution_ms(plan),
            "indexes": indexes_in(plan),
            "seq_scan_of_deliveries": reads_deliveries_sequentially(plan),
        }
        results.append(result)
        plans.append((who, name, path, plan))
        print(json.dumps(result), flush=True)

    # A bulk-retry dry run: the capped count of what a retry would queue.
    from deliveries.services.logsearch import DeliverySearch

    for name, search in [
        ("dry run: tenant big, failed (5,000)", DeliverySearch(statuses=("failed",))),
        (
            "dry run: tenant big, default statuses, invoice.*",
            DeliverySearch(event_type="invoice.*"),
        ),
    ]:
        times = []
        for _ in range(RUNS // 2):
            start = time.perf_counter()
            count = bulk_retry(Delivery.objects.for_tenant(BIG), search, dry_run=True).count
            times.append((time.perf_counter() - start) * 1000)
        result = {
            "who": "tenant",
            "search": name,
            "p50_ms": round(statistics.median(times), 1),
            "p95_ms": round(percentile(times, 0.95), 1),
            "rows": count,
            "db_ms": None,
            "indexes": [],
            "seq_scan_of_deliveries": False,
        }
        results.append(result)
        print(json.dumps(result), flush=True)

    total = Delivery.objects.order_by().count()
    big = Delivery.objects.for_tenant(BIG).order_by().count()
    lines = [
        f"# Delivery-log search: {total:,} deliveries, tenant {BIG!r} holding {big:,}",
        "",
        f"PostgreSQL {connection.pg_version}; {RUNS} runs after one warm-up, through the API in-process.",
        "",
        "p50/p95: the whole API request (authentication, query, serialization of the page);",
        "database: the page query's Execution Time in EXPLAIN ANALYZE (one run).",
        "",
        "| who | search | p50 ms | p95 ms | database ms | rows | indexes used | seq scan of deliveries |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for r in results:
        lines.append(
            f"| {r['who']} | {r['search']} | {r['p50_ms']} | {r['p95_ms']} | "
            f"{'' if r['db_ms'] is None else r['db_ms']} | {r['rows']} | "
            f"{', '.join(r['indexes'])} | {'YES' if r['seq_scan_of_deliveries'] else 'no'} |"
        )
    worst = max(r["p95_ms"] for r in results)
    slowest_db = max(r["db_ms"] or 0 for r in results)
    lines += [
        "",
        f"Yardstick: `GET /api/egress-ips/` (no history read) p50 {yardstick:.1f} ms in the same run.",
        f"Slowest p95: {worst} ms; slowest database time: {slowest_db} ms (target: under 300 ms).",
        f"Load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs.",
        "",
        "## Plans",
        "",
    ]
    for who, name, path, plan in plans:
        lines += [f"### {who}: {name}", "", f"`GET {path}`", "", "```", plan, "```", ""]
    report = "\n".join(lines)
    print("\n".join(lines[: 10 + len(results) + 5]))
    if output:
        Path(output).write_text(report + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    seeding = sub.add_parser("seed")
    seeding.add_argument("--deliveries", type=int, default=1_000_000)
    measuring = sub.add_parser("measure")
    measuring.add_argument("--output")
    sub.add_parser("vary", help="only the event variety, over a database bench/scale.py seeded")
    args = parser.parse_args()
    if args.command == "seed":
        seed(args.deliveries)
    elif args.command == "vary":
        vary()
    else:
        run_measure(args.output)


if __name__ == "__main__":
    main()
