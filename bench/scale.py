#!/usr/bin/env python
"""Scale bench (issue 27): is every page as fast with a month of history as with a day?

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/webhooks_scale \\
        python bench/scale.py seed --deliveries 1000000
    DATABASE_URL=... python bench/scale.py measure --output bench/results/scale-1m.md

seed: migrates the database and loads, with set-based SQL (INSERT ... SELECT over
generate_series, no row-by-row ORM), the shape of one month of a mid-sized SaaS: 100 tenants
(one, "big", with 10% of everything), deliveries/10 endpoints (at least 1,000), deliveries/10
events each fanned out to 10 endpoints of its tenant, about 1.8 attempts per delivery,
timestamps over 30 days (newest now; ids grow with time), states as they are in production (mostly succeeded, some
failed and discarded, the last hour's still pending, retrying or being sent). Then VACUUM
ANALYZE, as autovacuum would have done, and the 7-day backfill of the hourly health rollups. PostgreSQL only (SQLite has no generate_series).

Each table is filled by copying one row the ORM wrote (a template) with the varying columns
replaced, so columns added later keep their defaults without this file knowing them.

measure: times every list page, in-process through Django's test client (no HTTP server, so
the figures are the application's and the database's), 5 runs each after one warm-up, median
in ms: the admin as an operator (superuser), the API as an operator and as a tenant user of
"big", the portal as a customer of "big" (a portal link's session), and /api/metrics/. Then
the p50 of publishing an event through the API, alone and while two threads render the admin's
delivery list, and one prune run (RETENTION_DAYS 29: about a day of history is old) with its
rate in deliveries per second. Prints a Markdown table (and writes it to --output).
"""

# The page table in run_measure() reads best one page per line.
# ruff: noqa: E501
from __future__ import annotations

import argparse
import base64
import json
import multiprocessing
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
os.environ.setdefault(
    "WEBHOOKS_OVERRIDES", json.dumps({"METRICS_ENABLED": True, "FAN_OUT_INLINE_MAX": 500})
)

RUNS = 5
TENANTS = 100
BIG = "big"


# --- seed -----------------------------------------------------------------------------------


def copy_rows(
    cursor: Any, model: Any, template_pk: Any, count_sql: str, overrides: dict, order: str = ""
) -> None:
    """INSERT INTO <model's table> SELECT <template row's columns, `overrides` replaced>
    FROM <template> CROSS JOIN (<count_sql>) AS g. `overrides`: column -> SQL expression
    (may use g.* and tpl.*); a column mapped to None is left to its database default."""
    table = model._meta.db_table
    columns, values = [], []
    for field in model._meta.concrete_fields:
        column = field.column
        if column in overrides and overrides[column] is None:
            continue
        columns.append(f'"{column}"')
        values.append(overrides.get(column, f'tpl."{column}"'))
    pk = model._meta.pk.column
    cursor.execute(
        f'INSERT INTO "{table}" ({", ".join(columns)}) '
        f'SELECT {", ".join(values)} FROM "{table}" AS tpl CROSS JOIN ({count_sql}) AS g '
        # No parameters (the expressions use `%` as modulo): the pk is ours, an int or a UUID.
        f"WHERE tpl.\"{pk}\" = '{template_pk}'" + (f" ORDER BY {order}" if order else "")
    )


def seed(deliveries: int) -> None:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    from deliveries.models import Delivery, DeliveryAttempt, Event
    from subscriptions.models import EventType, Subscription, Tenant

    assert connection.vendor == "postgresql", "the scale bench seeds PostgreSQL only"
    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    if Delivery.objects.exists():
        sys.exit("the database already holds deliveries: seed a fresh one")
    endpoints = max(1000, deliveries // 10)
    events = deliveries // 10
    small = (endpoints - endpoints // 10) // (TENANTS - 1)

    with transaction.atomic():
        keys = [BIG] + [f"t{i:02d}" for i in range(1, TENANTS)]
        Tenant.objects.bulk_create(Tenant(key=k, name=f"Tenant {k}") for k in keys)
        for name in ("order.created", "order.paid", "invoice.paid", "customer.updated"):
            EventType.objects.get_or_create(name=name)
        tpl_sub = Subscription.objects.create(
            url="https://template.example.com/", event_types=["order.*"], tenant_id=BIG
        )
        tpl_event = Event.objects.create(type="order.created", data={"id": 0}, tenant_id=BIG)
        tpl_delivery = Delivery.objects.create(event=tpl_event, subscription=tpl_sub)
        tpl_attempt = DeliveryAttempt.objects.create(
            delivery=tpl_delivery, number=1, started_at=tpl_event.created_at, duration_ms=1
        )
        with connection.cursor() as cursor:
            # Endpoint k belongs to a contiguous block: "big" holds the first 10%, the other
            # 99 tenants equal shares of the rest. bench_sub maps k to its id and block.
            cursor.execute(
                "CREATE TEMP TABLE bench_sub AS "
                "SELECT k, md5('sub' || k)::uuid AS id, "
                f"CASE WHEN k < {endpoints // 10} THEN 0 "
                f"ELSE LEAST({TENANTS - 1}, 1 + (k - {endpoints // 10}) / {small}) END AS t "
                f"FROM generate_series(0, {endpoints - 1}) AS k"
            )
            cursor.execute(
                "CREATE TEMP TABLE bench_tenant AS SELECT t, min(k) AS lo, count(*) AS size "
                "FROM bench_sub GROUP BY t"
            )
            cursor.execute("CREATE UNIQUE INDEX ON bench_sub (k)")
            cursor.execute("ANALYZE bench_sub")
            tenant_key = f"CASE WHEN s.t = 0 THEN '{BIG}' ELSE 't' || lpad(s.t::text, 2, '0') END"
            copy_rows(
                cursor,
                Subscription,
                tpl_sub.pk,
                f"SELECT s.*, {tenant_key} AS tenant FROM bench_sub s",
                {
                    "id": "g.id",
                    "tenant_id": "g.tenant",
                    "url": "'https://hooks-' || g.k || '.example.com/webhooks'",
                    "description": "'Endpoint ' || g.k",
                    # 1 in 100 takes every type; the others the order family.
                    "event_types": "CASE WHEN g.k % 100 = 0 THEN '[\"*\"]'::jsonb "
                    "ELSE '[\"order.*\"]'::jsonb END",
                    "created_at": "now() - interval '60 days' * random()",
                    "updated_at": "now()",
                },
            )
            # Event n: the tenant of endpoint (n * 7919) mod endpoints (a permutation: 7919 is
            # a prime that divides no count used here), so every tenant publishes all month;
            # created at an even pace over 30 days.
            copy_rows(
                cursor,
                Event,
                tpl_event.pk,
                f"SELECT n, s.t, {tenant_key} AS tenant, "
                f"now() - interval '30 days' * (1 - n::float / {events}) "
                "- interval '1 ms' * (n % 997) AS at "
                f"FROM generate_series(0, {events - 1}) AS n "
                f"JOIN bench_sub s ON s.k = (n::bigint * 7919) % {endpoints}",
                {
                    "id": "md5('ev' || g.n)::uuid",
                    "tenant_id": "g.tenant",
                    "type": "CASE WHEN g.n % 5 = 0 THEN 'order.paid' ELSE 'order.created' END",
                    "data": "jsonb_build_object('id', g.n, 'total', '42.00')",
                    "idempotency_key": "'key-' || g.n",
                    "created_at": "g.at",
                    "fanned_out_at": "g.at",
                },
            )
            # Delivery d: event d/10 to the (d % 10)-th next endpoint of the event's tenant,
            # inserted oldest first so that ids grow with time, as in production.
            recent = "g.at > now() - interval '1 hour'"
            h = "((g.d * 2654435761) % 100)"
            status = (
                f"CASE WHEN {recent} THEN (CASE WHEN {h} < 5 THEN 'pending' "
                f"WHEN {h} < 8 THEN 'retrying' WHEN {h} < 9 THEN 'sending' ELSE 'succeeded' END) "
                f"WHEN {h} < 92 THEN 'succeeded' WHEN {h} < 97 THEN 'failed' "
                f"WHEN {h} < 99 THEN 'discarded' ELSE 'skipped' END"
            )
            copy_rows(
                cursor,
                Delivery,
                tpl_delivery.pk,
                f"SELECT d, {tenant_key} AS tenant, "
                f"md5('ev' || (d / 10))::uuid AS event, "
                "md5('sub' || (bt.lo + (s.k - bt.lo + d % 10) % bt.size))::uuid AS sub, "
                f"now() - interval '30 days' * (1 - (d / 10)::float / {events}) "
                "- interval '1 ms' * ((d / 10) % 997) + interval '1 ms' * (d % 10) AS at "
                f"FROM generate_series(0, {events * 10 - 1}) AS d "
                f"JOIN bench_sub s ON s.k = ((d / 10)::bigint * 7919) % {endpoints} "
                "JOIN bench_tenant bt ON bt.t = s.t",
                {
                    "id": None,
                    "event_id": "g.event",
                    "subscription_id": "g.sub",
                    "tenant_key": "g.tenant",
                    "status": status,
                    "attempts": f"CASE WHEN ({status}) = 'succeeded' THEN 1 + g.d % 2 "
                    f"WHEN ({status}) = 'failed' THEN 8 WHEN ({status}) = 'retrying' THEN 2 "
                    f"WHEN ({status}) IN ('pending', 'skipped') THEN 0 ELSE 1 END",
                    "next_attempt_at": f"CASE WHEN ({status}) IN ('pending', 'retrying') "
                    "THEN now() + interval '5 minutes' END",
                    "claimed_at": f"CASE WHEN ({status}) = 'sending' THEN now() END",
                    "last_status_code": f"CASE WHEN ({status}) = 'succeeded' THEN 200 "
                    f"WHEN ({status}) IN ('failed', 'retrying', 'discarded') THEN 503 END",
                    "last_error": f"CASE WHEN ({status}) = 'failed' "
                    "THEN 'HTTP 503: Service Unavailable' ELSE '' END",
                    "delivered_at": f"CASE WHEN ({status}) = 'succeeded' "
                    "THEN g.at + interval '1 second' END",
                    "created_at": "g.at",
                    "updated_at": "g.at + interval '1 second'",
                },
                order="g.d",
            )
            copy_rows(
                cursor,
                DeliveryAttempt,
                tpl_attempt.pk,
                "SELECT dl.id AS delivery, dl.status, dl.attempts, dl.created_at, n "
                "FROM webhooks_delivery dl CROSS JOIN LATERAL generate_series(1, dl.attempts) n "
                f"WHERE dl.id <> {tpl_delivery.pk}",
                {
                    "id": None,
                    "delivery_id": "g.delivery",
                    "number": "g.n",
                    "started_at": "g.created_at + interval '5 minutes' * (g.n - 1)",
                    "duration_ms": "20 + (g.delivery * 7 + g.n) % 300",
                    "response_status": "CASE WHEN g.status = 'succeeded' AND g.n = g.attempts "
                    "THEN 200 ELSE 503 END",
                },
                order="g.delivery, g.n",
            )
        tpl_attempt.delete()
        tpl_delivery.delete()
        tpl_event.delete()
        tpl_sub.delete()
    with connection.cursor() as cursor:
        for model in (Subscription, Event, Delivery, DeliveryAttempt):
            cursor.execute(f'VACUUM ANALYZE "{model._meta.db_table}"')
    # The health figures read the hourly rollups: count the last 7 days of attempts into them,
    # as the beat's roll-up task does on a new installation (its first runs).
    from deliveries.services import rollups

    started = time.perf_counter()
    rolled = rollups.roll_up(budget=3600)
    print(
        json.dumps(
            {"rolled_up_attempts": rolled.attempts, "seconds": round(time.perf_counter() - started)}
        )
    )
    print(
        json.dumps(
            {
                "tenants": Tenant.objects.count(),
                "endpoints": Subscription.objects.count(),
                "events": Event.objects.count(),
                "deliveries": Delivery.objects.count(),
                "attempts": DeliveryAttempt.objects.count(),
                "seconds": round(time.perf_counter() - started, 1),
            }
        )
    )


# --- measure --------------------------------------------------------------------------------


def cursor_at(position: Any) -> str:
    """A DRF cursor that starts a keyset page at `position` (a created_at value): what a
    client holds after following `next` that far."""
    return base64.b64encode(urlencode({"p": str(position)}).encode()).decode()


def timed(call: Callable[[], Any], runs: int = RUNS) -> tuple[float, int]:
    """Median ms of `runs` calls after one warm-up, and the last response's size in bytes."""
    response = call()
    status = getattr(response, "status_code", 200)
    if status not in (200, 304):
        raise SystemExit(f"{status}: {getattr(response, 'content', b'')[:300]!r}")
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        response = call()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), len(getattr(response, "content", b""))


def measure(output: str | None, only: str | None = None) -> None:
    from tests.procs import RedisServer

    # A throwaway Redis as the broker: publishing enqueues (no worker runs; not measured).
    redis = RedisServer().start()
    os.environ["CELERY_BROKER_URL"] = os.environ["WEBHOOKS_REDIS_URL"] = redis.url
    try:
        run_measure(output, only)
    finally:
        redis.stop()


def run_measure(output: str | None, only: str | None = None) -> None:
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connections
    from django.test import Client, override_settings
    from rest_framework.test import APIClient

    from deliveries.models import Delivery, Event
    from deliveries.services import maintenance
    from subscriptions.models import Subscription
    from tests.factories import make_user
    from webhooks_portal.access import make_token

    user_model = get_user_model()
    operator = user_model.objects.filter(username="bench-operator").first()
    if operator is None:
        operator = user_model.objects.create_superuser("bench-operator", password="x")
        make_user("bench-tenant", tenant=BIG)
        make_user("bench-publisher", "add_event", tenant=BIG)
    tenant_user = user_model.objects.get(username="bench-tenant")
    publisher = user_model.objects.get(username="bench-publisher")
    deliveries = Delivery.objects.order_by().count()  # once, for the report
    half = deliveries // 2
    deep = Delivery.objects.order_by("-created_at").values_list("created_at", flat=True)[half]
    deep_big = (
        Delivery.objects.filter(subscription__tenant_id=BIG)
        .order_by("-created_at")
        .values_list("created_at", flat=True)[half // 10]
    )
    deep_event = Event.objects.order_by("-created_at").values_list("created_at", flat=True)[
        half // 10
    ]
    some = Delivery.objects.order_by("-created_at")[half // 3]
    endpoint = Subscription.objects.filter(tenant_id=BIG).order_by("created_at")[5]
    unfinished = list(
        Delivery.objects.filter(subscription__tenant_id=BIG, status__in=["pending", "retrying"])
        .order_by("-created_at")
        .values_list("pk", flat=True)[:50]
    )

    admin = Client()
    admin.force_login(operator)
    api = APIClient()
    api.force_authenticate(operator)
    tenant_api = APIClient()
    tenant_api.force_authenticate(tenant_user)
    portal = Client()
    portal.get(f"/portal/access/{make_token(BIG)}/")

    deliveries_admin = "/admin/deliveries/delivery/"
    events_admin = "/admin/deliveries/event/"
    subs_admin = "/admin/webhook_subscriptions/subscription/"
    log = "/portal/deliveries/"
    rows = ",".join(map(str, unfinished))
    # (who, page, client, path, query)
    pages: list[tuple[str, str, Any, str, dict]] = [
        ("admin", "deliveries, first page", admin, deliveries_admin, {}),
        ("admin", "deliveries, status failed", admin, deliveries_admin, {"status__exact": "failed"}),
        ("admin", "deliveries, tenant big", admin, deliveries_admin, {"tenant": BIG}),
        ("admin", "deliveries, tenant t50", admin, deliveries_admin, {"tenant": "t50"}),
        ("admin", "deliveries, endpoint id", admin, deliveries_admin, {"subscription__id__exact": str(endpoint.pk)}),
        ("admin", "deliveries, deep (half-way)", admin, deliveries_admin, {"cursor": cursor_at(deep)}),
        ("admin", "deliveries, search event id", admin, deliveries_admin, {"q": str(some.event_id)}),
        ("admin", "deliveries, search delivery id", admin, deliveries_admin, {"q": str(some.pk)}),
        ("admin", "deliveries, search URL part", admin, deliveries_admin, {"q": "hooks-4242."}),
        ("admin", "events, first page", admin, events_admin, {}),
        ("admin", "events, deep", admin, events_admin, {"cursor": cursor_at(deep_event)}),
        ("admin", "events, search id", admin, events_admin, {"q": str(some.event_id)}),
        ("admin", "subscriptions, first page", admin, subs_admin, {}),
        ("admin", "subscriptions, search URL part", admin, subs_admin, {"q": "hooks-4242."}),
        ("admin", "tenants", admin, "/admin/webhook_subscriptions/tenant/", {}),
        ("admin", "dashboard", admin, f"{deliveries_admin}dashboard/", {}),
        ("api operator", "deliveries", api, "/api/deliveries/", {}),
        ("api operator", "deliveries, status failed", api, "/api/deliveries/", {"status": "failed"}),
        ("api operator", "deliveries, endpoint", api, "/api/deliveries/", {"subscription": str(endpoint.pk)}),
        ("api operator", "deliveries, deep (half-way)", api, "/api/deliveries/", {"cursor": cursor_at(deep)}),
        ("api operator", "events", api, "/api/events/", {}),
        ("api operator", "events, deep", api, "/api/events/", {"cursor": cursor_at(deep_event)}),
        ("api operator", "subscriptions", api, "/api/subscriptions/", {}),
        ("api operator", "tenants", api, "/api/tenants/", {}),
        ("api tenant", "deliveries", tenant_api, "/api/deliveries/", {}),
        ("api tenant", "deliveries, deep", tenant_api, "/api/deliveries/", {"cursor": cursor_at(deep_big)}),
        ("api tenant", "events", tenant_api, "/api/events/", {}),
        ("api tenant", "subscriptions", tenant_api, "/api/subscriptions/", {}),
        ("portal", "delivery log", portal, log, {}),
        ("portal", "delivery log, status failed", portal, log, {"status": "failed"}),
        ("portal", "delivery log, endpoint", portal, log, {"endpoint": str(endpoint.pk)}),
        ("portal", "delivery log, deep", portal, log, {"cursor": cursor_at(deep_big)}),
        ("portal", "endpoints", portal, "/portal/endpoints/", {}),
        ("portal", "refresh of 50 unfinished rows", portal, f"{log}rows/", {"ids": rows}),
        ("metrics", "/api/metrics/ (operator session)", admin, "/api/metrics/", {}),
    ]  # fmt: skip
    results = []
    if only:
        # A before/after of some pages in one sitting: those pages alone, no publish, no prune.
        wanted = [w.strip().lower() for w in only.split("|")]
        pages = [p for p in pages if any(w in f"{p[0]} {p[1]}".lower() for w in wanted)]
    for who, page, client, path, query in pages:
        ms, size = timed(lambda client=client, path=path, query=query: client.get(path, query))
        results.append({"who": who, "page": page, "p50_ms": round(ms, 1), "bytes": size})
        print(json.dumps(results[-1]), flush=True)
    if only:
        return

    # Publishing: alone, then while two threads render the admin's delivery list.
    publish_api = APIClient()
    publish_api.force_authenticate(publisher)

    def publish_p50(n: int = 20) -> float:
        times = []
        for i in range(n):
            start = time.perf_counter()
            answer = publish_api.post(
                "/api/events/", {"type": "invoice.paid", "data": {"n": i}}, format="json"
            )
            times.append((time.perf_counter() - start) * 1000)
            assert answer.status_code == 202, answer.content
        return statistics.median(times)

    alone = publish_p50()
    # Two other processes (as two other web workers would be) render the admin's delivery
    # list over and over while publishing is timed again.
    stop = multiprocessing.Event()

    def render_admin() -> None:
        client = Client()
        client.force_login(operator)
        while not stop.is_set():
            client.get(deliveries_admin)
        connections.close_all()

    connections.close_all()  # the children open their own
    workers = [multiprocessing.Process(target=render_admin) for _ in range(2)]
    for process in workers:
        process.start()
    try:
        time.sleep(1)
        loaded = publish_p50()
    finally:
        stop.set()
        for process in workers:
            process.join(60)
    print(json.dumps({"publish_p50_ms": round(alone, 1), "while_admin_p50_ms": round(loaded, 1)}))

    with override_settings(
        WEBHOOKS={
            **__import__("django.conf").conf.settings.WEBHOOKS,
            "RETENTION_DAYS": 29,
            "PRUNE_TIME_BUDGET": 60,
        }
    ):
        start = time.perf_counter()
        pruned = maintenance.prune()
        seconds = time.perf_counter() - start
    prune = {
        "deliveries": pruned.deliveries,
        "attempts": pruned.attempts,
        "events": pruned.events,
        "done": pruned.done,
        "seconds": round(seconds, 1),
        "deliveries_per_second": round(pruned.deliveries / seconds) if seconds else None,
    }
    print(json.dumps({"prune": prune}))

    lines = [
        f"Deliveries at start: {deliveries:,}. Median of {RUNS} runs after one warm-up, ms.",
        "",
        "| who | page | p50 ms | bytes |",
        "| --- | --- | ---: | ---: |",
        *(f"| {r['who']} | {r['page']} | {r['p50_ms']} | {r['bytes']:,} |" for r in results),
        "",
        f"Publish p50: {alone:.1f} ms alone, {loaded:.1f} ms while 2 processes render the admin's "
        "delivery list.",
        "",
        f"Prune (RETENTION_DAYS 29, budget 60 s): {prune['deliveries']:,} deliveries, "
        f"{prune['attempts']:,} attempts, {prune['events']:,} events in {prune['seconds']} s "
        f"({prune['deliveries_per_second']:,} deliveries/s; done: {prune['done']}).",
    ]
    table = "\n".join(lines)
    print(table)
    if output:
        Path(output).write_text(table + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    seeding = sub.add_parser("seed", help="load history into an empty database")
    seeding.add_argument("--deliveries", type=int, required=True)
    measuring = sub.add_parser("measure", help="time every list page")
    measuring.add_argument("--output", help="also write the Markdown table here")
    measuring.add_argument(
        "--only",
        help="time only the pages whose 'who page' contains one of these |-separated texts",
    )
    args = parser.parse_args()
    if args.command == "seed":
        seed(args.deliveries)
    else:
        measure(args.output, args.only)


if __name__ == "__main__":
    main()
