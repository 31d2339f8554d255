#!/usr/bin/env python
"""Filter and channel routing benchmark: one command, everything on loopback.

    python bench/filters.py --db postgres     # 100,000 subscriptions, 1,000 tenants
    python bench/filters.py --db sqlite
    python bench/filters.py --db postgres --tenants 100 --per-tenant 2000 --refused 1000
                                              # same-type subscriptions whose filter says no

Each tenant has 100 subscriptions: 10 select `shipment.*` with a filter the events match
(`data.total >= 100`), 10 select it with a filter they do not match (`data.region = "us"`),
10 select it on a channel the events do not carry (`us`), and 70 select other types. Each
request publishes `shipment.sent` with channel `eu` to one tenant (a different one each time)
through the API, as the SaaS backend does (a token holding `deliveries.add_event`), and must
answer 202 with exactly 10 deliveries. `--refused N` gives each filtered tenant N (instead of
10) subscriptions of the published type whose filter refuses the events (`--per-tenant` at
least 20 + N): on PostgreSQL the routing query refuses them itself, so the publish should cost
about what the yardstick's does however many there are.

It measures, in the same run and the same database:

- the answer time (p50, p95) at 2,000 subscriptions (the first 10 tenants and the yardstick's)
  and again at 101,000 (all of them): their ratio shows whether the cost grows with other
  tenants' and non-matching subscriptions (it should stay near 1.0);
- the yardstick: publishes to 10 tenants whose 10 matching subscriptions have no filter and no
  channels (and 90 of other types), one after each filtered publish so that both see the same
  machine; the ratio is what filters and channels cost per publish;
- the queries per publish, and that every delivery went to a subscription whose filter matches;
- how many filters the fan-out evaluated in Python per publish (`filterlang.matches` calls
  from the routing code): 0 on PostgreSQL, where the routing query evaluates the compiled
  filters itself (jsonb_path_match), and the 20 same-type candidates' filters on SQLite.

Redis is started for the enqueue; no worker runs (the deliveries wait in the queue, which is
not what is measured). Only the processes this command started are stopped, by their pid.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.tenants import environment, pct, publisher_client  # noqa: E402

TYPE = "shipment.sent"
OTHERS = ["invoice.*", "customer.created", "refund.*", "order.*"]
MATCHING = 10


def tenant_rows(key: str, per_tenant: int, plain: bool, refused: int = MATCHING) -> list:
    from subscriptions.models import Subscription

    rows = []
    for i in range(per_tenant):
        fields: dict = {"event_types": [OTHERS[i % len(OTHERS)]]}
        if i < MATCHING:
            fields = {"event_types": ["shipment.*"]}
            if not plain:
                fields["filter"] = {"data.total": {"$gte": 100}}
        elif not plain and i < MATCHING + refused:
            fields = {"event_types": ["shipment.*"], "filter": {"data.region": "us"}}
        elif not plain and i < 2 * MATCHING + refused:
            fields = {"event_types": ["shipment.*"], "channels": ["us"]}
        rows.append(Subscription(tenant_id=key, url=f"http://127.0.0.1:9/{key}/{i}", **fields))
    return rows


def create_tenants(
    keys: list[str], per_tenant: int, plain: bool = False, refused: int = MATCHING
) -> None:
    from subscriptions.models import Subscription, Tenant

    Tenant.objects.bulk_create([Tenant(key=key, name=key) for key in keys])
    batch: list = []
    for key in keys:
        batch += tenant_rows(key, per_tenant, plain, refused)
        if len(batch) >= 10_000:
            Subscription.objects.bulk_create(batch, batch_size=5000)
            batch = []
    Subscription.objects.bulk_create(batch, batch_size=5000)


def measure_pair(
    client, filtered: list[str], plain: list[str], requests: int, warmup: int, seed: int
) -> tuple[dict, dict]:
    """The filtered and the unfiltered tenants' publishes, one of each in turn, so that both
    see the same machine (other processes' load comes and goes on a shared machine)."""
    rng = random.Random(seed)
    samples: dict[str, dict[str, list[float]]] = {
        "filtered": {"times": [], "queries": [], "python": []},
        "plain": {"times": [], "queries": [], "python": []},
    }
    for n in range(warmup + requests):
        for case, tenants in (("filtered", filtered), ("plain", plain)):
            before = len(EVALUATED)
            elapsed, queries = publish_once(client, rng.choice(tenants), n)
            if n >= warmup:
                samples[case]["times"].append(elapsed)
                samples[case]["queries"].append(queries)
                samples[case]["python"].append(len(EVALUATED) - before)
    figures = {
        case: {
            "p50": statistics.median(values["times"]),
            "p95": pct(values["times"], 95),
            "queries": statistics.median(values["queries"]),
            "python": statistics.mean(values["python"]),
        }
        for case, values in samples.items()
    }
    return figures["filtered"], figures["plain"]


def publish_once(client, tenant: str, n: int) -> tuple[float, int]:
    """One API publish to `tenant`: (milliseconds, queries)."""
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    # The query log keeps the last 9,000 queries only: emptied before each count.
    reset_queries()
    body = {
        "type": TYPE,
        "data": {"id": n, "total": 250, "region": "eu"},
        "channels": ["eu"],
        "tenant": tenant,
    }
    with CaptureQueriesContext(connection) as captured:
        begin = time.perf_counter()
        response = client.post("/api/events/", body, format="json")
        elapsed = time.perf_counter() - begin
    if response.status_code != 202 or response.json()["deliveries"] != MATCHING:
        raise RuntimeError(f"unexpected answer: {response.status_code} {response.content}")
    return elapsed * 1000, len(captured)


EVALUATED: list[None] = []


def count_python_evaluations() -> None:
    """Count the routing code's calls of `filterlang.matches` (it still evaluates them)."""
    from subscriptions import models

    real = models.matches

    def counted(filter, document):  # type: ignore[no-untyped-def]
        if filter:
            EVALUATED.append(None)
        return real(filter, document)

    models.matches = counted  # type: ignore[assignment]


def run(args: argparse.Namespace) -> str:
    with environment(args, "webhooks_bench_filters"):
        from django.db import connection

        count_python_evaluations()

        from deliveries.models import Delivery
        from subscriptions.models import Subscription

        keys = [f"org_{t}" for t in range(args.tenants)]
        plain = [f"plain_{t}" for t in range(10)]
        client = publisher_client()
        small = keys[:10]
        create_tenants(small, args.per_tenant, refused=args.refused)
        create_tenants(plain, args.per_tenant, plain=True)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        at_small = Subscription.objects.count()
        few, few_plain = measure_pair(client, small, plain, args.requests, args.warmup, seed=1)

        started = time.perf_counter()
        create_tenants(keys[10:], args.per_tenant, refused=args.refused)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        at_large = Subscription.objects.count()
        print(f"{at_large:,} subscriptions ({time.perf_counter() - started:.0f} s to create)")
        many, many_plain = measure_pair(client, keys, plain, args.requests, args.warmup, seed=2)

        # Every delivery of a filtered tenant went to a subscription whose filter matches.
        wrong = (
            Delivery.objects.filter(subscription__tenant__key__startswith="org_")
            .exclude(subscription__filter={"data.total": {"$gte": 100}})
            .count()
        )
        lines = [
            f"## Publishing with filters and channels among {at_large:,} subscriptions "
            f"({connection.vendor})",
            "",
            f"`{command(args)}`: tenants of {args.per_tenant} subscriptions, "
            f"{MATCHING} matching by filter, {args.refused} refused by their filter, "
            f"{MATCHING} by their channels, the rest other types; {args.requests} API publishes "
            f"to random tenants after {args.warmup} warm-up ones, per row.",
            "",
            "| case | subscriptions | p50 | p95 | queries per publish "
            "| filters evaluated in Python per publish |",
            "| --- | --- | --- | --- | --- | --- |",
            *(
                f"| {case} | {count:,} | {r['p50']:.1f} ms | {r['p95']:.1f} ms "
                f"| {r['queries']:.0f} | {r['python']:.1f} |"
                for case, count, r in (
                    ("filtered tenants", at_small, few),
                    ("yardstick: unfiltered tenants", at_small, few_plain),
                    ("filtered tenants", at_large, many),
                    ("yardstick: unfiltered tenants", at_large, many_plain),
                )
            ),
            "",
            f"- p50 filtered at {at_large:,} / at {at_small:,}: {many['p50'] / few['p50']:.2f} "
            f"(yardstick: {many_plain['p50'] / few_plain['p50']:.2f})",
            f"- p50 filtered / unfiltered, same run: {few['p50'] / few_plain['p50']:.2f} at "
            f"{at_small:,}, {many['p50'] / many_plain['p50']:.2f} at {at_large:,}",
            f"- deliveries to a subscription whose filter does not match: {wrong}",
        ]
        text = "\n".join(lines)
        print(text)
        if wrong:
            raise SystemExit(text + "\nCHECK FAILED")
        return text


def command(args: argparse.Namespace) -> str:
    """The command line that reproduces this run."""
    extra = "".join(
        f" --{name.replace('_', '-')} {getattr(args, name)}"
        for name, default in (("tenants", 1000), ("per_tenant", 100), ("refused", MATCHING))
        if getattr(args, name) != default
    )
    return f"python bench/filters.py --db {args.db}{extra}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432"),
        help="PostgreSQL server (no database name)",
    )
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--per-tenant", type=int, default=100)
    parser.add_argument(
        "--refused",
        type=int,
        default=MATCHING,
        help="subscriptions per tenant of the published type whose filter refuses the events",
    )
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--output", help="also write the table to this file")
    args = parser.parse_args(argv)
    if args.per_tenant < 2 * MATCHING + args.refused:
        parser.error(f"--per-tenant must be at least {2 * MATCHING} + --refused")
    text = run(args)
    if args.output:
        Path(args.output).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
