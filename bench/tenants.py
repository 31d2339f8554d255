#!/usr/bin/env python
"""Tenant benchmarks: one command each, everything on loopback.

    python bench/tenants.py fanout --db postgres     # 100,000 subscriptions, 1,000 tenants
    python bench/tenants.py fairness --db postgres   # hanging tenant A vs fast tenant B

fanout: 1,000 tenants of 100 subscriptions each (10 of each tenant's select `order.created`).
Each request publishes `order.created` to one tenant (a different one each time) through the
API, as the SaaS backend does: a token of a user holding `deliveries.add_event`, no superuser.
It reports the answer time (p50, p95, max) and the queries one publish makes, and checks that
every delivery went to the named tenant's subscriptions and that the plan of the fan-out query
reads the tenant index. Redis is started for the enqueue; no worker runs (the deliveries wait in
the queue, which is not what is measured).

fairness: tenant A has 30 endpoints that hang past TIMEOUT and 10 events each (300 deliveries),
tenant B one fast endpoint; A publishes, then B publishes 10 events. A Procfile worker (threads,
100, the shipped settings) delivers. Reported: how long after publishing B's deliveries arrive,
and A's peak of deliveries in flight, with the tenant cap (the default) and without it
(TENANT_MAX_IN_FLIGHT None), each against a fresh database.

Only the processes this command started are stopped, by their pid.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import statistics
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.procs import RedisServer, Worker  # noqa: E402
from tests.receiver import Receiver, Reply  # noqa: E402


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


class Database:
    """A fresh database for one run: PostgreSQL (created, dropped after) or a SQLite file."""

    def __init__(self, args: argparse.Namespace, name: str) -> None:
        self.args = args
        self.name = f"{name}_{os.getpid()}"
        self.sqlite = ROOT / "var" / f"{self.name}.sqlite3"

    def url(self) -> str:
        if self.args.db == "sqlite":
            self.sqlite.parent.mkdir(exist_ok=True)
            return f"sqlite:///{self.sqlite}"
        import psycopg

        base = self.args.pg_url.rstrip("/")
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{self.name}"')
        return f"{base}/{self.name}"

    def drop(self) -> None:
        if self.args.db == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.sqlite}{suffix}").unlink(missing_ok=True)
            return
        import psycopg

        with (
            contextlib.suppress(Exception),
            psycopg.connect(f"{self.args.pg_url.rstrip('/')}/postgres", autocommit=True) as conn,
        ):
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def setup_django(database_url: str, broker_url: str, overrides: dict | None = None) -> None:
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": broker_url,
            "WEBHOOKS_OVERRIDES": json.dumps(overrides or {}),
            "WEBHOOKS_LOG_LEVEL": "WARNING",
        }
    )
    import django

    warnings.filterwarnings("ignore", message="No directory at")
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


@contextlib.contextmanager
def environment(args: argparse.Namespace, name: str) -> Iterator[None]:
    """A Redis and a fresh database for one scenario, Django set up on them; both removed
    after (only what this started is stopped)."""
    redis = RedisServer().start()
    database = Database(args, name)
    try:
        setup_django(database.url(), redis.url)
        yield
    finally:
        from django.db import connections

        with contextlib.suppress(Exception):
            connections.close_all()
        database.drop()
        redis.stop()


def publisher_client():
    """An API client authenticated as the SaaS backend: a token, `deliveries.add_event`."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    user = get_user_model().objects.create_user("backend")
    user.user_permissions.add(Permission.objects.get(codename="add_event"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


# --- fanout -----------------------------------------------------------------------------------


def create_subscriptions(tenants: int, per_tenant: int, matching: int) -> None:
    from subscriptions.models import Subscription, Tenant

    Tenant.objects.bulk_create([Tenant(key=f"org_{t}", name=f"Org {t}") for t in range(tenants)])
    others = ["invoice.*", "customer.created", "refund.*", "shipment.sent"]
    batch: list[Subscription] = []
    for t in range(tenants):
        for i in range(per_tenant):
            filters = ["order.*"] if i < matching else [others[i % len(others)]]
            batch.append(
                Subscription(
                    tenant_id=f"org_{t}",
                    url=f"http://127.0.0.1:9/{t}/{i}",
                    event_types=filters,
                )
            )
        if len(batch) >= 10_000:
            Subscription.objects.bulk_create(batch, batch_size=5000)
            batch = []
    Subscription.objects.bulk_create(batch, batch_size=5000)


def run_fanout(args: argparse.Namespace) -> str:
    with environment(args, "webhooks_bench_tenants"):
        from django.db import connection
        from django.db.models import F
        from django.test.utils import CaptureQueriesContext

        from deliveries.models import Delivery, Event
        from subscriptions.models import Subscription

        started = time.perf_counter()
        create_subscriptions(args.tenants, args.per_tenant, args.matching)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        total = Subscription.objects.count()
        setup_seconds = time.perf_counter() - started
        print(f"{total} subscriptions in {args.tenants} tenants ({setup_seconds:.0f} s)")

        client = publisher_client()
        rng = random.Random(13)
        times: list[float] = []
        queries: list[int] = []
        for n in range(args.warmup + args.requests):
            tenant = f"org_{rng.randrange(args.tenants)}"
            body = {"type": "order.created", "data": {"id": n, "total": "42.00"}, "tenant": tenant}
            with CaptureQueriesContext(connection) as captured:
                begin = time.perf_counter()
                response = client.post("/api/events/", body, format="json")
                elapsed = time.perf_counter() - begin
            if response.status_code != 202 or response.json()["deliveries"] != args.matching:
                raise RuntimeError(f"unexpected answer: {response.status_code} {response.content}")
            if n >= args.warmup:
                times.append(elapsed * 1000)
                queries.append(len(captured))
        # Every delivery went to the named tenant's endpoints.
        crossed = Delivery.objects.exclude(subscription__tenant_id=F("event__tenant_id")).count()
        deliveries = Delivery.objects.count()
        expected = Event.objects.count() * args.matching
        plan = Subscription.objects.for_tenant("org_1").matching("order.created").explain()
        # Any index led by the tenant column will do (webhooks_sub_tenant_idx, or the tenant
        # list's webhooks_sub_tenant_state_idx, whichever the planner prefers).
        # PostgreSQL: "Index Cond: ((tenant_id)..."; SQLite: "USING INDEX x (tenant_id=?)".
        by_tenant = re.search(
            r"Index Cond: \(\(tenant_id\)|USING (COVERING )?INDEX \w+ \(tenant_id=", plan
        )
        uses_index = by_tenant is not None and "Seq Scan" not in plan
        lines = [
            f"## Publishing to one tenant among {total:,} subscriptions ({connection.vendor})",
            "",
            f"`python bench/tenants.py fanout --db {args.db}`: {args.tenants:,} tenants x "
            f"{args.per_tenant} subscriptions, {args.matching} of each tenant's match; "
            f"{args.requests} API publishes (token, `deliveries.add_event`) to random tenants "
            f"after {args.warmup} warm-up ones.",
            "",
            "| metric | value |",
            "| --- | --- |",
            f"| answer time p50 | {statistics.median(times):.1f} ms |",
            f"| answer time p95 | {pct(times, 95):.1f} ms |",
            f"| answer time max | {max(times):.1f} ms |",
            f"| queries per publish | {statistics.median(queries):.0f} |",
            f"| deliveries | {deliveries:,} (expected {expected:,}) |",
            f"| deliveries to another tenant's endpoint | {crossed} |",
            f"| fan-out plan uses the tenant index | {'yes' if uses_index else 'NO'} |",
        ]
        text = "\n".join(lines)
        print(text)
        print("\nplan of the fan-out query:\n" + plan)
        if crossed or deliveries != expected or not uses_index:
            raise SystemExit(text + "\nCHECK FAILED")
        return text


# --- fairness ---------------------------------------------------------------------------------


def fairness_case(args: argparse.Namespace, cap: bool) -> dict:
    """One case: its own worker (the one with the settings under test), receiver and pair of
    tenants; this process only publishes and reads."""
    from deliveries.services import inflight, publish
    from subscriptions.models import Subscription, Tenant

    suffix = "capped" if cap else "uncapped"
    tenant_a, tenant_b = f"a-{suffix}", f"b-{suffix}"
    receiver = Receiver().start()
    overrides = {"TIMEOUT": args.timeout}
    if not cap:
        overrides["TENANT_MAX_IN_FLIGHT"] = None
    worker = Worker(
        os.environ["CELERY_BROKER_URL"],
        os.environ["DATABASE_URL"],
        pool="threads",
        concurrency=100,
        overrides=overrides,
        settings_module="bench.settings",
        extra_env={"DATABASE_POOL_MAX_SIZE": "16"},
    )
    try:
        for n in range(30):
            receiver.script(f"/a{n}", Reply(200, delay=args.timeout * 3))
            Subscription.objects.create(
                tenant=Tenant.objects.for_key(tenant_a),
                url=receiver.url(f"/a{n}"),
                event_types=["order.*"],
            )
        Subscription.objects.create(
            tenant=Tenant.objects.for_key(tenant_b), url=receiver.url("/b"), event_types=["*"]
        )
        worker.start()
        for n in range(10):
            publish("order.created", {"id": n, "total": "42.00"}, tenant=tenant_a)
        published = {}
        for n in range(10):
            event = publish("order.created", {"id": n, "total": "42.00"}, tenant=tenant_b)
            published[str(event.pk)] = time.monotonic()
        peak = 0
        deadline = time.monotonic() + args.timeout * 4 + 30
        while receiver.counts["/b"] < 10 and time.monotonic() < deadline:
            peak = max(peak, inflight.tenant_in_flight(tenant_a))
            time.sleep(0.05)
        arrivals = {r.headers["webhook-id"]: r.at for r in receiver.requests_to("/b")}
        latencies = sorted(arrivals[e] - at for e, at in published.items() if e in arrivals)
        return {
            "cap": "TENANT_MAX_IN_FLIGHT 20 (default)" if cap else "no tenant cap (None)",
            "delivered": len(latencies),
            "p50": statistics.median(latencies) if latencies else float("nan"),
            "max": latencies[-1] if latencies else float("nan"),
            "peak": peak if cap else "-",
        }
    finally:
        worker.stop()
        receiver.stop()
        import redis as redis_lib

        redis_lib.Redis.from_url(os.environ["CELERY_BROKER_URL"]).flushdb()


def run_fairness(args: argparse.Namespace) -> str:
    with environment(args, "webhooks_bench_fairness"):
        cases = [case.strip() for case in args.cases.split(",")]
        rows = [fairness_case(args, cap=case == "capped") for case in cases]
        from django.db import connection

        lines = [
            f"## Fairness: a tenant with hanging endpoints beside a fast one ({connection.vendor})",
            "",
            f"`python bench/tenants.py fairness --db {args.db}`: tenant A, 30 endpoints that hang "
            f"{args.timeout * 3:.0f} s (TIMEOUT {args.timeout:g} s), 10 events each (300 "
            "deliveries); then tenant B, 10 events to one fast endpoint. One Procfile worker "
            "(threads, 100; DATABASE_POOL_MAX_SIZE 16).",
            "",
            "| tenant cap | B delivered | B latency p50 | B latency max | A peak in flight |",
            "| --- | --- | --- | --- | --- |",
            *(
                f"| {r['cap']} | {r['delivered']}/10 | {r['p50']:.2f} s | {r['max']:.2f} s "
                f"| {r['peak']} |"
                for r in rows
            ),
        ]
        text = "\n".join(lines)
        print(text)
        return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("scenario", choices=["fanout", "fairness"])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432"),
        help="PostgreSQL server (no database name)",
    )
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--per-tenant", type=int, default=100)
    parser.add_argument("--matching", type=int, default=10, help="subscriptions per tenant hit")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=15, help="fairness: WEBHOOKS TIMEOUT")
    parser.add_argument(
        "--cases", default="capped,uncapped", help="fairness: capped, uncapped or both"
    )
    parser.add_argument("--output", help="also write the table to this file")
    args = parser.parse_args(argv)
    text = run_fanout(args) if args.scenario == "fanout" else run_fairness(args)
    if args.output:
        Path(args.output).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
