"""Read-only figures about endpoint health and the pipeline, for the admin, commands and metrics.

Every function here answers for many subscriptions with a fixed number of grouped queries (never
one per row), so a changelist page of 100 subscriptions costs the same as one of 10.

An attempt "succeeded" when the receiver answered 2xx; anything else (non-2xx, timeout, refused
connection, blocked destination) is a failure of that endpoint.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db.models import Count, Max, Min, Q, QuerySet
from django.db.models.functions import TruncDate, TruncMinute
from django.utils import timezone

from subscriptions.models import Subscription

from ..conf import webhook_settings
from ..dispatch import queue_lengths
from ..models import FINISHED, WAITING, Delivery, DeliveryAttempt, DeliveryStatus, ErrorKind

logger = logging.getLogger(__name__)

OK = Q(response_status__gte=200, response_status__lt=300)
# Upper bounds (ms) of the latency buckets: the p95 shown is the bound of the bucket holding the
# 95th percentile, the way Prometheus' histogram_quantile reads buckets, so one grouped COUNT
# query answers it on SQLite and PostgreSQL alike. The metrics histogram uses the same bounds.
LATENCY_BUCKETS_MS: tuple[int, ...] = (
    10,
    25,
    50,
    100,
    250,
    500,
    1000,
    2500,
    5000,
    10000,
    15000,
    30000,
)
OUTCOMES: tuple[str, ...] = ("succeeded", "http_error", "timeout", "connection", "other")
HISTORY_DAYS = 7


@dataclass
class DayOutcomes:
    day: dt.date
    succeeded: int = 0
    failed: int = 0


@dataclass
class Health:
    attempts_24h: int = 0
    succeeded_24h: int = 0
    p95_ms: int | None = None  # bucket upper bound; None without attempts
    p95_over: bool = False  # slower than the largest bucket
    failures_in_a_row: int = 0
    days: list[DayOutcomes] = field(default_factory=list)

    @property
    def success_rate(self) -> float | None:
        """Share of 2xx attempts in the last 24 hours, 0..1; None without attempts."""
        if not self.attempts_24h:
            return None
        return self.succeeded_24h / self.attempts_24h


def _bucket_counts() -> dict[str, Count]:
    return {
        f"le_{bound}": Count("pk", filter=Q(duration_ms__lte=bound)) for bound in LATENCY_BUCKETS_MS
    }


def quantile_from_buckets(row: dict, total: int, q: float = 0.95) -> tuple[int | None, bool]:
    """The smallest bucket bound holding the q-quantile; (largest bound, True) beyond it."""
    if not total:
        return None, False
    needed = q * total
    for bound in LATENCY_BUCKETS_MS:
        if row[f"le_{bound}"] >= needed:
            return bound, False
    return LATENCY_BUCKETS_MS[-1], True


def attempts_since(since: dt.datetime) -> QuerySet[DeliveryAttempt]:
    """Attempts started at or after `since`, for figures grouped by the delivery's endpoint or
    tenant (a join to the deliveries).

    The deliveries are bounded too: created at most the whole retry schedule (plus the
    longest attempt) before `since`. Without that bound PostgreSQL hashed every stored
    delivery to join a day of attempts (0.1 s at 100,000 deliveries, ten times that at
    1,000,000: a cost that grew with `RETENTION_DAYS`); with it, both sides are index ranges
    the size of the window. What it leaves out: attempts in the window of deliveries older
    than that (one sent again by hand, or replayed, days later)."""
    schedule = sum(float(s) for s in webhook_settings.RETRY_SCHEDULE)
    oldest = since - dt.timedelta(seconds=schedule + webhook_settings.stale_sending_after)
    return DeliveryAttempt.objects.filter(started_at__gte=since, delivery__created_at__gte=oldest)


def subscription_health(
    subscriptions: Sequence[Subscription], now: dt.datetime | None = None
) -> dict[object, Health]:
    """Health of each subscription: four grouped queries whatever their number."""
    now = now or timezone.now()
    ids = [s.pk for s in subscriptions]
    result: dict[object, Health] = {s.pk: Health() for s in subscriptions}
    if not ids:
        return result
    day_start = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    first_day = day_start - dt.timedelta(days=HISTORY_DAYS - 1)
    for health in result.values():
        health.days = [
            DayOutcomes((first_day + dt.timedelta(days=i)).date()) for i in range(HISTORY_DAYS)
        ]

    # 1. Last 24 hours: attempts, successes and latency buckets per subscription.
    recent = (
        DeliveryAttempt.objects.filter(
            delivery__subscription_id__in=ids, started_at__gte=now - dt.timedelta(hours=24)
        )
        .values("delivery__subscription_id")
        .annotate(total=Count("pk"), ok=Count("pk", filter=OK), **_bucket_counts())
        .order_by()
    )
    for row in recent:
        health = result[row["delivery__subscription_id"]]
        health.attempts_24h, health.succeeded_24h = row["total"], row["ok"]
        health.p95_ms, health.p95_over = quantile_from_buckets(row, row["total"])

    # 2. Last 7 days by calendar day: successes and failures.
    daily = (
        DeliveryAttempt.objects.filter(delivery__subscription_id__in=ids, started_at__gte=first_day)
        .annotate(day=TruncDate("started_at"))
        .values("delivery__subscription_id", "day")
        .annotate(total=Count("pk"), ok=Count("pk", filter=OK))
        .order_by()
    )
    for row in daily:
        for bucket in result[row["delivery__subscription_id"]].days:
            if bucket.day == row["day"]:
                bucket.succeeded += row["ok"]
                bucket.failed += row["total"] - row["ok"]

    # 3 and 4. Failures in a row: failed attempts after the last success, only for endpoints in
    # a failing run (`failing_since` set; the others have none). The run starts at
    # `failing_since` minus the longest an attempt can take, because `failing_since` is written
    # when the first failed attempt ends, not when it started.
    margin = dt.timedelta(seconds=webhook_settings.stale_sending_after)
    run_start = {s.pk: s.failing_since - margin for s in subscriptions if s.failing_since}
    if run_start:
        last_ok = dict(
            DeliveryAttempt.objects.filter(
                OK,
                delivery__subscription_id__in=list(run_start),
                started_at__gte=min(run_start.values()),
            )
            .values("delivery__subscription_id")
            .annotate(last=Max("started_at"))
            .values_list("delivery__subscription_id", "last")
            .order_by()
        )
        after = Q()
        for pk, start in run_start.items():
            since = max(start, last_ok[pk]) if last_ok.get(pk) else start
            after |= Q(delivery__subscription_id=pk, started_at__gt=since)
        failures = (
            DeliveryAttempt.objects.filter(after)
            .exclude(OK)
            .values("delivery__subscription_id")
            .annotate(n=Count("pk"))
            .values_list("delivery__subscription_id", "n")
            .order_by()
        )
        for pk, n in failures:
            result[pk].failures_in_a_row = n
    return result


def outcome_of(response_status: int | None, error_kind: str) -> str:
    if response_status is not None and 200 <= response_status < 300:
        return "succeeded"
    if error_kind == ErrorKind.TIMEOUT:
        return "timeout"
    if error_kind == ErrorKind.CONNECTION:
        return "connection"
    if response_status is not None:
        return "http_error"
    return "other"


@dataclass
class Retries:
    """Where retries wait. A retry is a `retrying` row in the database whatever else holds it;
    the broker's retry queue only lists the messages that are due and not yet taken, because a
    short wait rides a countdown message held by a worker (reserved, not in the queue) and a
    long one is parked in the database. So the queue alone reads 0 while deliveries retry.
    """

    total: int  # deliveries in `retrying`
    due: int  # their next attempt is due now (a message is on its way, or the sweep sends it)
    soon: int  # due within `max_countdown`: a worker holds their countdown message
    parked: int  # due later: parked in the database, the sweep sends them when due
    queued: int | None  # messages in the broker's retry queue; None when it is unreachable


@dataclass
class Backlog:
    due: int
    oldest_due_age: float | None  # seconds since the oldest due delivery became due
    sending: int
    queues: dict[str, int | None]  # broker queue lengths; None when the broker is unreachable
    retries: Retries | None = None


@dataclass
class Unhealthy:
    subscription: Subscription
    attempts: int
    failed: int


@dataclass
class Dashboard:
    now: dt.datetime
    minutes: list[tuple[dt.datetime, dict[str, int]]]
    backlog: Backlog
    unhealthy: list[Unhealthy]
    status_counts: dict[str, int]


def attempts_per_minute(
    now: dt.datetime, minutes: int = 60
) -> list[tuple[dt.datetime, dict[str, int]]]:
    """Attempts of the last `minutes` minutes by outcome, one entry per minute (oldest first)."""
    end = now.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    start = end - dt.timedelta(minutes=minutes)
    slots = {start + dt.timedelta(minutes=i): dict.fromkeys(OUTCOMES, 0) for i in range(minutes)}
    rows = (
        DeliveryAttempt.objects.filter(started_at__gte=start)
        .annotate(minute=TruncMinute("started_at"))
        .values("minute", "response_status", "error_kind")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for row in rows:
        slot = slots.get(row["minute"])
        if slot is not None:
            slot[outcome_of(row["response_status"], row["error_kind"])] += row["n"]
    return list(slots.items())


def retries(now: dt.datetime, queued: int | None) -> Retries:
    """`retrying` deliveries by when they are due (one query), with the retry queue's length
    `queued` as the broker reported it."""
    soon = now + dt.timedelta(seconds=webhook_settings.max_countdown)
    row = Delivery.objects.filter(status=DeliveryStatus.RETRYING).aggregate(
        total=Count("pk"),
        due=Count("pk", filter=Q(next_attempt_at__lte=now)),
        soon=Count("pk", filter=Q(next_attempt_at__gt=now, next_attempt_at__lte=soon)),
    )
    return Retries(
        total=row["total"],
        due=row["due"],
        soon=row["soon"],
        parked=row["total"] - row["due"] - row["soon"],
        queued=queued,
    )


def backlog(now: dt.datetime | None = None, *, with_queues: bool = True) -> Backlog:
    now = now or timezone.now()
    due = Delivery.objects.due(now).aggregate(n=Count("pk"), oldest=Min("next_attempt_at"))
    sending = Delivery.objects.filter(status="sending").count()
    queues = queue_lengths() if with_queues else {}
    return Backlog(
        due=due["n"],
        oldest_due_age=(now - due["oldest"]).total_seconds() if due["oldest"] else None,
        sending=sending,
        queues=queues,
        # Asked with the queues, for the pages and commands; the metrics keep their own figures.
        retries=retries(now, queues.get(webhook_settings.RETRY_QUEUE)) if with_queues else None,
    )


def unhealthiest(now: dt.datetime | None = None, limit: int = 10) -> list[Unhealthy]:
    """Endpoints with the most failed attempts in the last 24 hours (one grouped query)."""
    now = now or timezone.now()
    rows = list(
        attempts_since(now - dt.timedelta(hours=24))
        .values("delivery__subscription_id")
        .annotate(total=Count("pk"), failed=Count("pk", filter=~OK))
        .filter(failed__gt=0)
        .order_by("-failed", "-total")[:limit]
    )
    subs = Subscription.objects.in_bulk([r["delivery__subscription_id"] for r in rows])
    return [
        Unhealthy(subs[r["delivery__subscription_id"]], r["total"], r["failed"])
        for r in rows
        if r["delivery__subscription_id"] in subs
    ]


def waiting_deliveries(subscription_ids: Sequence[object]) -> dict[object, dict[str, int]]:
    """Deliveries waiting for an attempt (pending, retrying) per subscription and status, in
    one grouped query; subscriptions with none are absent."""
    rows = (
        Delivery.objects.filter(subscription_id__in=list(subscription_ids), status__in=WAITING)
        .values("subscription_id", "status")
        .annotate(n=Count("pk"))
        .order_by("subscription_id", "status")
    )
    result: dict[object, dict[str, int]] = {}
    for row in rows:
        result.setdefault(row["subscription_id"], {})[row["status"]] = row["n"]
    return result


# Finished deliveries on the admin dashboard: those created in the last hour.
STATUS_WINDOW_SECONDS = 3600


def status_counts(
    now: dt.datetime | None = None, window: float = STATUS_WINDOW_SECONDS
) -> dict[str, int]:
    """Deliveries by status, two bounded grouped queries, never a count of all history:
    every unfinished one (pending, sending, retrying: as many as the backlog, read on the
    status index) and the finished ones created in the last `window` seconds (a range of the
    created_at index). Statuses without deliveries are absent."""
    now = now or timezone.now()
    unfinished = Delivery.objects.unfinished().values("status").annotate(n=Count("pk"))
    finished = (
        Delivery.objects.filter(
            status__in=FINISHED, created_at__gte=now - dt.timedelta(seconds=window)
        )
        .values("status")
        .annotate(n=Count("pk"))
    )
    return {row["status"]: row["n"] for rows in (unfinished, finished) for row in rows.order_by()}


def dashboard(now: dt.datetime | None = None) -> Dashboard:
    now = now or timezone.now()
    return Dashboard(
        now=now,
        minutes=attempts_per_minute(now),
        backlog=backlog(now),
        unhealthy=unhealthiest(now),
        status_counts=status_counts(now),
    )


@dataclass
class TenantHealth:
    """One tenant's endpoints and traffic: subscriptions now, attempts in the last 24 hours."""

    subscriptions: int = 0
    active_subscriptions: int = 0
    failing_subscriptions: int = 0  # active, in a run of failed attempts (failing_since set)
    attempts_24h: int = 0
    succeeded_24h: int = 0
    p95_ms: int | None = None  # bucket upper bound, as Health.p95_ms
    p95_over: bool = False
    unfinished_deliveries: int = 0  # pending, sending or retrying

    @property
    def success_rate(self) -> float | None:
        """Share of 2xx attempts in the last 24 hours, 0..1; None without attempts."""
        if not self.attempts_24h:
            return None
        return self.succeeded_24h / self.attempts_24h


def tenant_health(keys: Sequence[str], now: dt.datetime | None = None) -> dict[str, TenantHealth]:
    """Health of each tenant in `keys`: three grouped queries whatever their number."""
    now = now or timezone.now()
    result = {key: TenantHealth() for key in keys}
    if not result:
        return result
    subs = (
        Subscription.objects.filter(tenant_id__in=list(result))
        .values("tenant_id")
        .annotate(
            total=Count("pk"),
            active=Count("pk", filter=Q(is_active=True)),
            failing=Count("pk", filter=Q(is_active=True, failing_since__isnull=False)),
        )
        .order_by()
    )
    for row in subs:
        health = result[row["tenant_id"]]
        health.subscriptions, health.active_subscriptions = row["total"], row["active"]
        health.failing_subscriptions = row["failing"]
    tenant = "delivery__subscription__tenant_id"
    recent = (
        attempts_since(now - dt.timedelta(hours=24))
        .filter(**{f"{tenant}__in": list(result)})
        .values(tenant)
        .annotate(total=Count("pk"), ok=Count("pk", filter=OK), **_bucket_counts())
        .order_by()
    )
    for row in recent:
        health = result[row[tenant]]
        health.attempts_24h, health.succeeded_24h = row["total"], row["ok"]
        health.p95_ms, health.p95_over = quantile_from_buckets(row, row["total"])
    unfinished = (
        Delivery.objects.unfinished()
        .filter(subscription__tenant_id__in=list(result))
        .values("subscription__tenant_id")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for row in unfinished:
        result[row["subscription__tenant_id"]].unfinished_deliveries = row["n"]
    return result
