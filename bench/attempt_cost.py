#!/usr/bin/env python
"""CPU per delivery attempt in one process, without Celery: the part of a delivery that is ours.

    python bench/attempt_cost.py --db postgres [--n 2000] [--profile out.prof]

Publishes events to subscribers on a local fast receiver (Celery messages go to a private
redis-server and are never consumed), then calls the attempt service for every delivery in a
loop, and prints CPU and wall time per attempt next to a plain `requests.Session` POST and an
`http.client` POST of the same body to the same receiver.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.run import PAYLOAD, Receiver  # noqa: E402
from devtools.processes import RedisServer  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--profile")
    args = parser.parse_args()

    redis_server = RedisServer().start()
    receiver = Receiver(0.0).start()
    try:
        return run(args, redis_server, receiver)
    finally:
        receiver.stop()
        redis_server.stop()
        _drop_database(args)


def _database_name() -> str:
    # One database per run (by pid): two runs side by side must not drop each other's.
    return f"webhooks_attempt_cost_{os.getpid()}"


def _drop_database(args: argparse.Namespace) -> None:
    if args.db != "postgres" or "django" not in sys.modules:
        return
    import psycopg
    from django.db import connections

    connections.close_all()
    with psycopg.connect(f"{args.pg_url}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{_database_name()}" WITH (FORCE)')


def _database_url(args: argparse.Namespace) -> str:
    if args.db == "sqlite":
        path = ROOT / "var" / "bench" / f"attempt-{os.getpid()}.sqlite3"
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"
    import psycopg

    name = _database_name()
    with psycopg.connect(f"{args.pg_url}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{args.pg_url}/{name}"


def run(args: argparse.Namespace, redis_server: RedisServer, receiver: Receiver) -> int:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="bench.settings",
        DATABASE_URL=_database_url(args),
        CELERY_BROKER_URL=redis_server.url,
    )
    import django

    django.setup()
    import http.client

    import requests
    from django.core.management import call_command

    from deliveries.models import Delivery
    from deliveries.services import attempt_delivery, publish
    from subscriptions.models import Subscription

    call_command("migrate", verbosity=0)
    subs = 50
    Subscription.objects.bulk_create(
        [Subscription(url=receiver.url(f"/s{i}"), event_types=["bench.cost"]) for i in range(subs)]
    )
    for i in range(args.n // subs):
        publish("bench.cost", {**PAYLOAD, "order": {**PAYLOAD["order"], "id": i}})
    ids = list(Delivery.objects.order_by("pk").values_list("pk", flat=True))

    import json

    body = json.dumps(PAYLOAD).encode()
    session = requests.Session()
    session.trust_env = False
    conn = http.client.HTTPConnection("127.0.0.1", receiver.port)

    def requests_post(i: int) -> None:
        session.post(receiver.url(f"/loop{i}"), data=body, headers={"webhook-id": f"r{i}"})

    def http_client_post(i: int) -> None:
        conn.request("POST", f"/hc{i}", body=body, headers={"webhook-id": f"h{i}"})
        conn.getresponse().read()

    from deliveries.transport import send

    def transport_send(i: int) -> None:
        result = send(
            receiver.url(f"/send{i % 50}"),
            body,
            {"webhook-id": f"s{i}"},
            connect_timeout=5,
            timeout=15,
            max_body_bytes=1024,
        )
        assert result.ok, result

    def ours(i: int) -> None:
        attempt_delivery(ids[i], 1)

    profiler = cProfile.Profile(time.process_time) if args.profile else None
    results = {}
    for name, fn in (
        ("http.client POST", http_client_post),
        ("requests POST", requests_post),
        ("transport.send", transport_send),
        ("attempt_delivery", ours),
    ):
        n = min(args.n, len(ids))
        if profiler and name == "attempt_delivery":
            profiler.enable()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for i in range(n):
            fn(i)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        if profiler and name == "attempt_delivery":
            profiler.disable()
        results[name] = (cpu / n * 1000, wall / n * 1000)
    assert Delivery.objects.filter(status="succeeded").count() == len(ids), "not all delivered"
    print(f"{args.db}: {len(ids)} attempts, one process, no Celery")
    print(f"{'':20} {'CPU ms':>8} {'wall ms':>8}")
    for name, (cpu, wall) in results.items():
        print(f"{name:20} {cpu:8.3f} {wall:8.3f}")
    if profiler:
        profiler.dump_stats(args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
