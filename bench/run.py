#!/usr/bin/env python
"""Delivery benchmark: one command, everything on loopback, one table.

    python bench/run.py                       # SQLite, every scenario, full size
    python bench/run.py --db postgres         # a fresh PostgreSQL database (webhooks_bench)
    python bench/run.py --quick --scenarios A,D

It starts its own redis-server on a free port, two receivers (fast, and one answering after
200 ms), a fresh database and the Celery workers under test (`--worker`, default: the
Procfile's recommendation), then runs these scenarios:

    A  100 events x 100 subscribers, fast receiver: deliveries/s end to end, worker CPU per 1,000
    B  the same against the 200 ms receiver
    C  one event to 10,000 subscribers: API answer time, time until every task is enqueued,
       time until every delivery arrived
    D  idle latency: one event to one subscriber, 200 times one after the other: p50 / p99
    E  100,000 deliveries waiting to retry: worker resident memory before and after

Each scenario runs, in the same invocation and against the same processes, the two
yardsticks: a no-op Celery task drained by the same workers, and a plain `requests.Session`
loop to the same receiver (one thread for the fast receiver; as many threads as the workers
have slots for the slow one). Our figures are printed as ratios to them. Every delivery is
checked to have arrived exactly once (distinct path + webhook-id at the receiver, one attempt
row per delivery). Only the processes this command started are stopped, by their pid.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from devtools.processes import (  # noqa: E402
    QUEUES,
    Process,
    RedisServer,
    free_port,
    wait_until,
)
from devtools.processes import Worker as CeleryWorker  # noqa: E402

# The recommended worker (the Procfile's, scaled to one process per core): threads for I/O
# concurrency, connections from a pool of DEFAULT_DB_POOL per process.
DEFAULT_WORKERS = ["threads:100", "threads:100"]
# SQLite has one writer at a time and an unfair busy handler: past a few dozen writer threads
# some wait beyond the 20 s busy timeout ("database is locked"). Fewer threads there.
DEFAULT_WORKERS_SQLITE = ["threads:32", "threads:32"]
DEFAULT_DB_POOL = 16
PAYLOAD = {
    "order": {"id": 0, "total": "42.00", "currency": "EUR", "customer": "c-123"},
    "lines": [{"sku": f"sku-{i}", "qty": i, "price": "1.50"} for i in range(8)],
}


# --- Processes ----------------------------------------------------------------------------------


class Receiver(Process):
    """bench/receiver.py on a free port: answers after `delay` seconds, counts what arrived."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.port = free_port()
        script = ROOT / "bench" / "receiver.py"
        args = [sys.executable, str(script), "--port", str(self.port), "--delay", str(delay)]
        super().__init__(args, log=Path(os.devnull))

    def start(self, ready: bytes | None = None, timeout: float = 10) -> Receiver:
        super().start()
        if not wait_until(self._up, timeout=timeout):
            raise RuntimeError("receiver did not start")
        return self

    def _up(self) -> bool:
        try:
            self.get("/_stats")
            return True
        except OSError:
            return False

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path: str, timeout: float = 5) -> dict:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", path)
            return json.loads(conn.getresponse().read())
        finally:
            conn.close()


class Worker(CeleryWorker):
    """A worker from a `--worker` spec, POOL:CONCURRENCY[:QUEUE+QUEUE...]."""

    def __init__(self, spec: str, env: dict[str, str], loglevel: str) -> None:
        parts = spec.split(":")
        queues = parts[2].replace("+", ",") if len(parts) > 2 else QUEUES
        super().__init__(
            env=env,
            pool=parts[0],
            concurrency=int(parts[1]),
            queues=queues,
            loglevel=loglevel,
            name="bench",
            extra=("-I", "bench.noop"),
        )
        self.spec = spec

    def start(self, ready: bytes | None = None, timeout: float = 30) -> Worker:
        """Start without waiting: the first drain tells when the workers consume."""
        super().start(ready, timeout)
        return self

    def stop(
        self, signum: int = signal.SIGQUIT, *, group: bool = False, timeout: float = 25
    ) -> None:
        # Cold shutdown: the bench is over, and a warm one would wait for the countdown
        # messages of scenario E (Redis hands unacknowledged messages back anyway).
        super().stop(signum, group=group, timeout=timeout)


# --- Results ------------------------------------------------------------------------------------


@dataclass
class Row:
    scenario: str
    metric: str
    ours: float
    unit: str
    noop: float | None = None
    loop: float | None = None
    cpu_ours: float | None = None
    cpu_noop: float | None = None
    check: str = ""
    target: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _fmt(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _ratio(ours: float, other: float | None, lower_is_better: bool = False) -> str:
    if not other:
        return "-"
    return f"{(other / ours if lower_is_better else ours / other):.0%}"


def print_table(rows: list[Row], header: str) -> str:
    lines = [
        header,
        "",
        "Ratios: for rates ours / yardstick, for times and latencies yardstick / ours (so 100% "
        "is par and higher is better). CPU: worker processes' CPU seconds per 1,000 tasks.",
        "",
        "| scenario | metric | ours | no-op Celery | requests loop | vs no-op | vs loop "
        "| worker CPU s/1k (ours / no-op) | exactly once | target |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for r in rows:
        lower = r.unit in {"ms", "s", "MB"}
        digits = 1 if r.unit in {"ms", "s", "MB"} else 0
        cpu = f"{_fmt(r.cpu_ours, 2)} / {_fmt(r.cpu_noop, 2)}" if r.cpu_ours is not None else "-"
        lines.append(
            f"| {r.scenario} | {r.metric} | {_fmt(r.ours, digits)} {r.unit} "
            f"| {_fmt(r.noop, digits)} | {_fmt(r.loop, digits)} "
            f"| {_ratio(r.ours, r.noop, lower) if r.unit != 'MB' else '-'} "
            f"| {_ratio(r.ours, r.loop, lower) if r.unit != 'MB' else '-'} | {cpu} "
            f"| {r.check or '-'} | {r.target or '-'} |"
        )
    text = "\n".join(lines)
    print(text, flush=True)
    return text


# --- The bench ----------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.quick = args.quick or args.smoke
        self.mode = "smoke" if args.smoke else "quick" if args.quick else "full"
        self.size = SIZES[self.mode] | ({"events": args.events} if self.mode == "full" else {})
        self.tmp = Path(tempfile.mkdtemp(prefix="webhooks-bench-"))
        self.redis = RedisServer()
        self.fast = Receiver(0.0)
        self.slow = Receiver(args.slow_delay)
        self.workers: list[Worker] = []
        self.rows: list[Row] = []

    # ----- setup
    def database_url(self) -> str:
        if self.args.db == "sqlite":
            path = ROOT / "var" / "bench" / f"bench-{os.getpid()}.sqlite3"
            path.parent.mkdir(parents=True, exist_ok=True)
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            self.sqlite_path = path
            return f"sqlite:///{path}"
        import psycopg

        base = self.args.pg_url.rstrip("/")
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.args.pg_db}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{self.args.pg_db}"')
        return f"{base}/{self.args.pg_db}"

    def setup(self) -> None:
        self.redis.start()
        self.fast.start()
        self.slow.start()
        if self.mode == "smoke":
            # Small enough to exercise the background fan-out path in scenario C.
            os.environ["WEBHOOKS_OVERRIDES"] = json.dumps({"FAN_OUT_INLINE_MAX": 20})
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "DATABASE_URL": self.database_url(),
            "CELERY_BROKER_URL": self.redis.url,
            "PYTHONPATH": str(ROOT),
            "BENCH_POST_URL": self.fast.url("/bare/"),
            "BENCH_REDIS_URL": self.redis.url,
            "WEBHOOKS_LOG_LEVEL": self.args.app_log_level,
        }
        os.environ.update({k: self.env[k] for k in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL")})
        os.environ["CELERY_BROKER_URL"] = self.redis.url
        import django

        warnings.filterwarnings("ignore", message="No directory at")  # whitenoise, no collectstatic
        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        import redis as redis_lib

        self.r = redis_lib.Redis.from_url(self.redis.url)
        from django.contrib.auth import get_user_model

        self.staff = get_user_model().objects.create_user(
            "bench", "bench@example.com", "pw", is_staff=True, is_superuser=True
        )
        worker_env = {**self.env, "DATABASE_POOL_MAX_SIZE": str(self.args.db_pool)}
        for spec in self.args.worker:
            self.workers.append(Worker(spec, worker_env, self.args.loglevel).start())
        if not self.drain(1, timeout=60)[0]:
            raise RuntimeError("workers did not start:\n" + self.workers[0].log.read_text()[-3000:])
        from django.db import connection

        self.vendor = connection.vendor

    def teardown(self) -> None:
        for w in self.workers:
            with contextlib.suppress(Exception):
                w.stop()
        for part in (self.fast, self.slow, self.redis):
            with contextlib.suppress(Exception):
                part.stop()
        from django.db import connections

        connections.close_all()
        if self.args.db == "postgres" and not self.args.keep_db:
            import psycopg

            with (
                contextlib.suppress(Exception),
                psycopg.connect(f"{self.args.pg_url.rstrip('/')}/postgres", autocommit=True) as c,
            ):
                c.execute(f'DROP DATABASE IF EXISTS "{self.args.pg_db}" WITH (FORCE)')
        if self.args.db == "sqlite" and not self.args.keep_db:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.sqlite_path}{suffix}").unlink(missing_ok=True)

    # ----- measurements
    def worker_cpu(self) -> float:
        return sum(w.cpu() for w in self.workers)

    def worker_rss(self) -> float:
        return sum(w.rss() for w in self.workers)

    def check_workers(self) -> None:
        for w in self.workers:
            if not w.alive():
                raise RuntimeError(f"worker {w.spec} died:\n{w.log.read_text()[-3000:]}")

    def queue_idle(self) -> bool:
        return not any(self.r.llen(q) for q in QUEUES.split(",")) and not self.r.hlen("unacked")

    def drain(self, n: int, timeout: float = 120, task: Any = None) -> tuple[bool, float, float]:
        """Enqueue n no-op tasks (or `task`) on the delivery queue; (drained, seconds, worker CPU
        seconds)."""
        from bench.noop import noop
        from deliveries.dispatch import enqueue_attempts

        wait_until(self.queue_idle, timeout=30, interval=0.01)
        cpu0 = self.worker_cpu()
        start = time.perf_counter()
        enqueue_attempts(((i, 1) for i in range(n)), task=(task or noop).name)
        done = wait_until(self.queue_idle, timeout=timeout, interval=0.005)
        return done, time.perf_counter() - start, self.worker_cpu() - cpu0

    def session_loop(self, url: str, n: int, threads: int = 1) -> float:
        """Requests per second of plain `requests.Session` POSTs to `url`."""
        import requests

        body = json.dumps({"type": "bench.loop", "data": PAYLOAD}).encode()
        per_thread = max(1, n // threads)

        def run() -> None:
            session = requests.Session()
            session.trust_env = False
            for i in range(per_thread):
                session.post(url, data=body, headers={"webhook-id": f"loop-{i}"}, timeout=10)

        start = time.perf_counter()
        pool = [threading.Thread(target=run) for _ in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        return per_thread * threads / (time.perf_counter() - start)

    def http_client_loop(self, n: int = 3000) -> float:
        """The receiver alone: a bare http.client keep-alive loop (far above anything else)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.fast.port)
        start = time.perf_counter()
        for i in range(n):
            conn.request("POST", "/alone/", body=b"x" * 500, headers={"webhook-id": str(i)})
            conn.getresponse().read()
        conn.close()
        return n / (time.perf_counter() - start)

    # ----- data
    def reset_data(self) -> None:
        from django.db import connection

        wait_until(self.queue_idle, timeout=60, interval=0.05)
        with connection.cursor() as cursor:
            for table in (
                "webhooks_delivery_attempt",
                "webhooks_delivery",
                "webhooks_event",
                "webhooks_subscription",
            ):
                cursor.execute(f"DELETE FROM {table}")
        self.fast.get("/_reset")
        self.slow.get("/_reset")

    def subscribe(self, n: int, event_type: str, url_prefix: str) -> None:
        from subscriptions.models import Subscription

        Subscription.objects.bulk_create(
            [Subscription(url=f"{url_prefix}{i}", event_types=[event_type]) for i in range(n)],
            batch_size=1000,
        )

    def wait_delivered(self, event_ids: list, expected: int, timeout: float) -> tuple[int, float]:
        """Wait until `expected` deliveries of these events succeeded; (count, end time)."""
        from django.db.models import Max

        from deliveries.models import Delivery, DeliveryStatus

        deadline = time.monotonic() + timeout
        query = Delivery.objects.filter(event_id__in=event_ids, status=DeliveryStatus.SUCCEEDED)
        count = 0
        while time.monotonic() < deadline:
            count = query.count()
            if count >= expected:
                break
            self.check_workers()
            time.sleep(0.1 if expected > 500 else 0.01)
        end = query.aggregate(m=Max("delivered_at"))["m"]
        return count, end.timestamp() if end else time.time()

    def exactly_once(self, receiver: Receiver, event_ids: list, expected: int) -> str:
        from deliveries.models import Delivery, DeliveryAttempt

        stats = receiver.get("/_stats")
        attempts = DeliveryAttempt.objects.filter(delivery__event_id__in=event_ids).count()
        deliveries = Delivery.objects.filter(event_id__in=event_ids).count()
        ok = (
            stats["total"] == expected
            and stats["distinct"] == expected
            and stats["duplicates"] == 0
            and attempts == expected
            and deliveries == expected
        )
        detail = (
            f"received {stats['total']}, distinct {stats['distinct']}, "
            f"attempts {attempts}, deliveries {deliveries} of {expected}"
        )
        return ("yes" if ok else "NO: ") + ("" if ok else detail)

    def publish_many(self, event_type: str, count: int) -> list:
        from deliveries.services import publish

        return [
            publish(event_type, {**PAYLOAD, "order": {**PAYLOAD["order"], "id": i}}).pk
            for i in range(count)
        ]

    # ----- scenarios
    def scenario_fanout(self, name: str, receiver: Receiver, events: int, subs: int) -> list[Row]:
        expected = events * subs
        event_type = f"bench.{name.lower()}"
        self.reset_data()
        self.subscribe(subs, event_type, receiver.url(f"/{name}/"))
        # Yardstick 1: the same number of no-op tasks through the same workers.
        done, noop_s, noop_cpu = self.drain(expected, timeout=self.args.timeout)
        noop_rate = expected / noop_s if done else None
        # Ours.
        profiler = self.start_profile(name)
        cpu0 = self.worker_cpu()
        start = time.time()
        ids = self.publish_many(event_type, events)
        count, end = self.wait_delivered(ids, expected, self.args.timeout)
        cpu = self.worker_cpu() - cpu0
        self.stop_profile(profiler)
        rate = count / (end - start)
        check = self.exactly_once(receiver, ids, expected)
        # Yardstick 2: plain requests.Session to the same receiver.
        threads = 1 if receiver.delay == 0 else self.slots()
        loop_n = min(expected, 3000) if receiver.delay == 0 else threads * 10
        loop_rate = self.session_loop(receiver.url("/loop/"), loop_n, threads)
        row = Row(
            name,
            f"{events} events x {subs} subscribers, "
            + ("fast receiver" if receiver.delay == 0 else f"{receiver.delay * 1000:g} ms receiver")
            + (f" (loop: {threads} threads)" if threads > 1 else ""),
            rate,
            "deliveries/s",
            noop=noop_rate,
            loop=loop_rate,
            cpu_ours=cpu / count * 1000 if count else None,
            cpu_noop=noop_cpu / expected * 1000,
            check=check,
        )
        if name == "A":
            self.a_rate = rate
            ok = bool(noop_rate and rate >= 0.8 * noop_rate)
            row.target = f">= 80% of no-op: {'met' if ok else 'MISSED'}"
            from bench.noop import post, post_db, post_db_redis

            yardsticks = [(post, "only POSTs")]
            if self.args.floors:
                yardsticks += [
                    (post_db, "POSTs between two statements"),
                    (post_db_redis, "POSTs between two statements and two Redis scripts"),
                ]
            return [
                row,
                *(
                    self.yardstick_row(receiver, expected, rate, cpu, count, task, what)
                    for task, what in yardsticks
                ),
            ]
        elif name == "B" and getattr(self, "a_rate", None):
            ok = rate >= 0.9 * self.a_rate
            row.target = f">= 90% of A ({rate / self.a_rate:.0%}): {'met' if ok else 'MISSED'}"
        return [row]

    def yardstick_row(
        self, receiver: Receiver, n: int, rate: float, cpu: float, count: int, task: Any, what: str
    ) -> Row:
        """A yardstick task drained n times by the same workers, beside scenario A's figures.
        `bench.noop.post` only POSTs, the cheapest a task per delivery could be: what separates
        ours from it is the claim, the record, signing and the in-flight cap. With `--floors`,
        the same POST between round trips that do no work (`post_db`, `post_db_redis`)."""
        receiver.get("/_reset")
        done, bare_s, bare_cpu = self.drain(n, timeout=self.args.timeout, task=task)
        stats = receiver.get("/_stats")
        return Row(
            "A",
            f"same, against a Celery task that {what} (in the no-op column)",
            rate,
            "deliveries/s",
            noop=n / bare_s if done else None,
            cpu_ours=cpu / count * 1000 if count else None,
            cpu_noop=bare_cpu / n * 1000,
            check="yes"
            if stats["distinct"] == n
            else f"NO: bare task received {stats['distinct']}",
        )

    def start_profile(self, name: str) -> subprocess.Popen | None:
        """py-spy on the first worker (`--profile DIR`): collapsed stacks, for flame graphs."""
        if not self.args.profile:
            return None
        out = Path(self.args.profile) / f"{self.args.db}-{name}.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        return subprocess.Popen(
            [
                shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"),
                "record",
                *("-p", str(self.workers[0].proc.pid), "-r", "250", "-f", "raw", "-o", str(out)),
                *(["--gil"] if self.args.gil else ["--nonblocking", "--subprocesses"]),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop_profile(self, proc: subprocess.Popen | None) -> None:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.wait(30)

    def slots(self) -> int:
        return sum(w.concurrency for w in self.workers if "webhooks" in w.queues.split(","))

    def scenario_c(self) -> list[Row]:
        from rest_framework.test import APIClient

        from bench.noop import noop
        from deliveries.models import Event

        n = self.size["c"]
        self.reset_data()
        self.subscribe(n, "bench.c", self.fast.url("/C/"))
        # Yardstick for enqueueing: a plain apply_async loop of n no-op tasks to a queue nobody
        # consumes, then dropped.
        start = time.perf_counter()
        for i in range(n):
            noop.apply_async((i, 1), queue="bench.sink")
        apply_loop_s = time.perf_counter() - start
        self.r.delete("bench.sink")
        done, noop_s, noop_cpu = self.drain(n, timeout=self.args.timeout)
        noop_rate = n / noop_s if done else None

        client = APIClient()
        client.force_authenticate(self.staff)
        # A first request to an event type nobody subscribes to: the timed one below then
        # measures the answer, not this process importing the URLconf, views and serializers.
        warm = client.post("/api/events/", {"type": "bench.warm", "data": {}}, format="json")
        assert warm.status_code == 202, warm.content
        lpush0 = self._lpush_calls()
        enqueued_at: list[float] = []
        stop = threading.Event()

        def watch() -> None:
            while not stop.is_set():
                if self._lpush_calls() - lpush0 >= n:
                    enqueued_at.append(time.perf_counter())
                    return
                time.sleep(0.005)

        watcher = threading.Thread(target=watch, daemon=True)
        cpu0 = self.worker_cpu()
        wall0 = time.time()
        start = time.perf_counter()
        watcher.start()
        response = client.post("/api/events/", {"type": "bench.c", "data": PAYLOAD}, format="json")
        api_s = time.perf_counter() - start
        event_id = response.data["id"]
        answered = response.data["deliveries"]
        count, end = self.wait_delivered([event_id], n, self.args.timeout)
        watcher.join(5)
        stop.set()
        cpu = self.worker_cpu() - cpu0
        enqueue_s = enqueued_at[0] - start if enqueued_at else float("nan")
        rate = count / (end - wall0)
        check = self.exactly_once(self.fast, [event_id], n)
        loop_rate = self.session_loop(self.fast.url("/loop/"), min(n, 3000))
        a_rate = getattr(self, "a_rate", None)
        assert Event.objects.filter(pk=event_id).exists()
        return [
            Row(
                "C",
                f"POST /api/events/ answer ({answered} deliveries counted)",
                api_s * 1000,
                "ms",
                check="count ok" if answered == n else f"NO: answered {answered}",
                target=f"< 100 ms: {'met' if api_s < 0.1 else 'MISSED'}",
            ),
            Row(
                "C",
                f"{n:,} tasks enqueued (no-op col: plain apply_async loop)",
                enqueue_s,
                "s",
                noop=apply_loop_s,
                target=f"< 5 s: {'met' if enqueue_s < 5 else 'MISSED'}" if not self.quick else "",
            ),
            Row(
                "C",
                f"1 event x {n:,} subscribers, all delivered",
                rate,
                "deliveries/s",
                noop=noop_rate,
                loop=loop_rate,
                cpu_ours=cpu / count * 1000 if count else None,
                cpu_noop=noop_cpu / n * 1000,
                check=check,
                target=(f"A's rate ({rate / a_rate:.0%} of A)" if a_rate else ""),
            ),
        ]

    def _lpush_calls(self) -> int:
        stats = self.r.info("commandstats").get("cmdstat_lpush", {})
        return int(stats.get("calls", 0))

    def scenario_d(self) -> Row:
        import requests

        from bench.noop import noop

        n = self.size["d"]
        self.reset_data()
        self.subscribe(1, "bench.d", self.fast.url("/D/"))
        # Yardstick latencies: one no-op task at a time until acknowledged; one Session POST.
        noop_lat = []
        for i in range(n):
            start = time.perf_counter()
            noop.apply_async((i, 1))
            wait_until(self.queue_idle, timeout=10, interval=0.0005)
            noop_lat.append(time.perf_counter() - start)
        session = requests.Session()
        session.trust_env = False
        loop_lat = []
        for i in range(n):
            start = time.perf_counter()
            session.post(self.fast.url("/loop/"), data=b"{}", headers={"webhook-id": str(i)})
            loop_lat.append(time.perf_counter() - start)
        from deliveries.services import publish

        self.fast.get("/_reset")  # the yardstick's requests are not deliveries
        sent: dict[str, float] = {}
        ids = []
        cpu0 = self.worker_cpu()
        for i in range(n):
            start = time.time()
            event = publish("bench.d", {**PAYLOAD, "n": i})
            sent[str(event.pk)] = start
            ids.append(event.pk)
            self.fast.get(f"/_wait?n={i + 1}&timeout=10", timeout=15)
        cpu = self.worker_cpu() - cpu0
        arrivals = self.fast.get("/_stats?arrivals=1")["arrivals"]
        lat = sorted(arrivals[k] - t for k, t in sent.items() if k in arrivals)
        self.wait_delivered(ids, n, 30)
        check = self.exactly_once(self.fast, ids, n)
        p50, p99 = _pct(lat, 50) * 1000, _pct(lat, 99) * 1000
        return [
            Row(
                "D",
                f"idle latency p50 ({n} one at a time)",
                p50,
                "ms",
                noop=_pct(noop_lat, 50) * 1000,
                loop=_pct(loop_lat, 50) * 1000,
                cpu_ours=cpu / n * 1000,
                check=check,
                target=f"< 50 ms: {'met' if p50 < 50 else 'MISSED'}",
            ),
            Row(
                "D",
                "idle latency p99",
                p99,
                "ms",
                noop=_pct(noop_lat, 99) * 1000,
                loop=_pct(loop_lat, 99) * 1000,
                target=f"< 250 ms: {'met' if p99 < 250 else 'MISSED'}",
            ),
        ]

    def scenario_e(self) -> list[Row]:
        """100,000 deliveries waiting to retry, created as bulk rows in `retrying` with their next
        attempt in the future (the state a long retry leaves them in: parked in the database),
        then the sweep run by the workers three times; plus a small real run that fails for
        real and waits on Celery countdowns (the short retries), reported apart."""
        from deliveries.models import UNFINISHED, Delivery, DeliveryStatus, Event
        from subscriptions.models import Subscription
        from webhooks_project.celery import app

        n = self.size["e"]
        subs_n = 100
        self.reset_data()
        time.sleep(1)
        rss0 = self.worker_rss()
        self.subscribe(subs_n, "bench.e", self.fast.url("/fail/E/"))
        subs = list(Subscription.objects.values_list("pk", flat=True))
        now = dt.datetime.now(dt.UTC)
        events = [
            Event(type="bench.e", data=PAYLOAD, fanned_out_at=now) for _ in range(n // subs_n)
        ]
        Event.objects.bulk_create(events, batch_size=1000)
        rng = random.Random(6)
        rows = (
            Delivery(
                event_id=event.pk,
                subscription_id=sub,
                status=DeliveryStatus.RETRYING,
                attempts=2,
                next_attempt_at=now + dt.timedelta(seconds=rng.uniform(1800, 36000)),
                last_status_code=500,
                last_error="HTTP 500",
                created_at=now,
            )
            for event in events
            for sub in subs
        )
        batch: list[Delivery] = []
        for row in rows:
            batch.append(row)
            if len(batch) == 5000:
                Delivery.objects.bulk_create(batch)
                batch = []
        if batch:
            Delivery.objects.bulk_create(batch)
        for _ in range(3):
            app.send_task("deliveries.tasks.sweep", queue="webhooks.maintenance")
            wait_until(self.queue_idle, timeout=120, interval=0.05)
        time.sleep(1)
        rss1 = self.worker_rss()
        waiting = Delivery.objects.filter(status=DeliveryStatus.RETRYING).count()
        check = f"{waiting:,} waiting" + ("" if waiting == n else f" (NO: expected {n:,})")
        rows_out = [
            Row(
                "E",
                f"{n:,} deliveries waiting to retry (parked rows + 3 sweeps): worker RSS growth",
                rss1 - rss0,
                "MB",
                extra={"before": rss0, "after": rss1},
                check=check,
                target=f"< 20 MB: {'met' if rss1 - rss0 < 20 else 'MISSED'}"
                + f" ({rss0:.0f} -> {rss1:.0f} MB)",
            )
        ]
        # Real failures: every first attempt gets a 500 and waits on a Celery countdown.
        real_events = max(1, self.size["e_real"] // subs_n)
        real = real_events * subs_n
        ids = self.publish_many("bench.e", real_events)
        wait_until(
            lambda: (
                Delivery.objects.filter(event_id__in=ids, status=DeliveryStatus.RETRYING).count()
                >= real
            ),
            timeout=min(self.args.timeout, 120),
            interval=0.2,
        )
        time.sleep(1)
        rss2 = self.worker_rss()
        rows_out.append(
            Row(
                "E",
                f"+ {real:,} real failures waiting on a Celery countdown: further RSS growth",
                rss2 - rss1,
                "MB",
                # Unfinished with an attempt made: retrying, or on its second attempt already
                # (5 s after the first failure) when this machine is slow. None lost or finished.
                check=_retrying_check(
                    Delivery.objects.filter(
                        event_id__in=ids, status__in=UNFINISHED, attempts__gte=1
                    ).count(),
                    real,
                ),
                target=f"{(rss2 - rss1) * 1024 / real:.1f} KB per countdown message",
            )
        )
        return rows_out

    def run(self) -> str:
        self.setup()
        wanted = [s.strip().upper() for s in self.args.scenarios.split(",")]
        events, subs = self.size["events"], self.size["subs"]
        receiver_alone = self.http_client_loop(self.size["alone"])
        started = time.perf_counter()
        if "A" in wanted:
            self.rows.extend(self.scenario_fanout("A", self.fast, events, subs))
        if "B" in wanted:
            self.rows.extend(self.scenario_fanout("B", self.slow, events, subs))
        if "C" in wanted:
            self.rows += self.scenario_c()
        if "D" in wanted:
            self.rows += self.scenario_d()
        if "E" in wanted:
            self.rows += self.scenario_e()
        header = (
            f"## bench: --db {self.args.db} ({self.vendor}), workers "
            f"{' + '.join(w.spec for w in self.workers)}"
            f"{f', DB pool {self.args.db_pool}' if self.vendor == 'postgresql' else ''}"
            f", nproc {os.cpu_count()}"
            f"{'' if self.mode == 'full' else ', ' + self.mode}\n\n"
            f"`{' '.join(['python', 'bench/run.py', *sys.argv[1:]])}` at "
            f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {time.perf_counter() - started:.0f} s; "
            f"receiver alone (http.client loop): {receiver_alone:,.0f} req/s"
        )
        return print_table(self.rows, header)


def _retrying_check(retrying: int, expected: int) -> str:
    text = f"{retrying:,} waiting to retry"
    return text if retrying == expected else f"NO: {text} of {expected:,}"


SIZES: dict[str, dict[str, int]] = {
    "full": {"events": 100, "subs": 100, "c": 10000, "d": 200, "e": 100000, "e_real": 2000},
    "quick": {"events": 10, "subs": 20, "c": 1000, "d": 30, "e": 10000, "e_real": 200},
    "smoke": {"events": 2, "subs": 5, "c": 60, "d": 5, "e": 500, "e_real": 100},
}
for _size in SIZES.values():
    _size["alone"] = min(3000, _size["c"])


def _pct(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(pct) - 1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--scenarios", default="A,B,C,D,E")
    parser.add_argument("--quick", action="store_true", help="small sizes, for development")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: proves the command works")
    parser.add_argument(
        "--worker",
        action="append",
        help="pool:concurrency[:queue+queue] of one worker process; repeat for more "
        f"(default: {' and '.join(DEFAULT_WORKERS)}; on SQLite "
        f"{' and '.join(DEFAULT_WORKERS_SQLITE)})",
    )
    parser.add_argument("--loglevel", default="warning", help="celery worker -l")
    parser.add_argument(
        "--db-pool",
        type=int,
        default=DEFAULT_DB_POOL,
        help="workers' DATABASE_POOL_MAX_SIZE (PostgreSQL connections per worker; 0: no pool)",
    )
    parser.add_argument("--app-log-level", default="INFO", help="deliveries/subscriptions loggers")
    parser.add_argument("--slow-delay", type=float, default=0.2)
    parser.add_argument("--events", type=int, default=100, help="events in A and B")
    parser.add_argument("--timeout", type=float, default=300, help="per scenario wait, seconds")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432"),
        help="PostgreSQL server (no database name)",
    )
    parser.add_argument(
        "--pg-db", default=f"webhooks_bench_{os.getpid()}", help="created fresh, dropped after"
    )
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--output", help="also write the table to this file")
    parser.add_argument("--profile", help="py-spy the first worker during A/B into this folder")
    parser.add_argument("--gil", action="store_true", help="profile only the GIL holder (CPU)")
    parser.add_argument(
        "--floors",
        action="store_true",
        help="in A, also drain the bare POST between two statements (and two Redis scripts)",
    )
    args = parser.parse_args(argv)
    args.worker = args.worker or list(
        DEFAULT_WORKERS_SQLITE if args.db == "sqlite" else DEFAULT_WORKERS
    )
    bench = Bench(args)
    try:
        text = bench.run()
    finally:
        bench.teardown()
    if args.output:
        Path(args.output).write_text(text + "\n")
    failed = [r for r in bench.rows if r.check.startswith("NO")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
