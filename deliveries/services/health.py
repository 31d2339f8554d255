"""Read-only figures about endpoint health and the pipeline, for the admin, commands and metrics.

Every function here answers for many subscriptions with a fixed number of grouped queries (never
one per row), so a changelist page of 100 subscriptions costs the same as one of 10.

The 24 h and 7-day attempt figures are read from the hourly rollups (`SubscriptionHour`,
`TenantHour`, filled every minute by deliveries/services/rollups.py): at most 24 buckets per
subscription or tenant for "24 h", so they cost the same whatever the traffic, and are up to one
rollup interval plus `STALE_SENDING_AFTER` old (`rollups.as_of()` says how old). "24 h" is the
current UTC hour and the 23 before it. Figures that are cheap stay exact: unfinished deliveries
(the backlog's size), failures in a row (only endpoints in a failing run), the dashboard's last
60 minutes.

An attempt "succeeded" when the receiver answered 2xx; anything else (non-2xx, timeout, refused
connection, blocked destination) is a failure of that endpoint.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db.models import Count, F, Max, Min, Q, QuerySet, Sum
from django.db.models.functions import TruncDate, TruncMinute
from django.utils import timezone

from subscriptions.models import Subscription

from ..conf import webhook_settings
from ..dispatch import queue_lengths
from ..models import (
    FINISHED,
    WAITING,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    ErrorKind,
    RollupMark,
    SubscriptionHour,
    TenantHour,
)

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


def bucket_counts() -> dict[str, Count]:
    """Aggregates `le_<ms>`: attempts that took at most each bound of LATENCY_BUCKETS_MS."""
    return {
        f"le_{bound}": Count("pk", filter=Q(duration_ms__lte=bound)) for bound in LATENCY_BUCKETS_MS
    }


# The RollupMark row of the attempt rollups (deliveries/services/rollups.py).
ROLLUP_MARK = "attempts"


def counted_up_to() -> dt.datetime | None:
    """The moment the hourly attempt figures are complete up to (every attempt started before
    it is counted; None before the first rollup run): shown with the figures, which are up
    to one rollup interval plus `STALE_SENDING_AFTER` old."""
    return RollupMark.objects.filter(name=ROLLUP_MARK).values_list("upto", flat=True).first()


def floor_hour(moment: dt.datetime) -> dt.datetime:
    """The start of `moment`'s hour in UTC (the rollups' buckets are UTC hours)."""
    return moment.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def last_24_hours(now: dt.datetime) -> dt.datetime:
    """The first of the 24 hourly buckets that make "the last 24 hours": `now`'s and 23 more."""
    return floor_hour(now) - dt.timedelta(hours=23)


def summed_buckets(
    model: type[SubscriptionHour] | type[TenantHour],
    key: str,
    since: dt.datetime,
    **filters: object,
) -> QuerySet:
    """Rows of {key, attempts, succeeded, le_<ms>...}: `model`'s buckets from the hour `since`
    on, summed per `key` (one grouped query)."""
    return (
        model.objects.filter(hour__gte=since, **filters)
        .values(key)
        .annotate(
            attempts=Sum("attempts"),
            succeeded=Sum("succeeded"),
            **{f"le_{b}": Sum(f"le_{b}") for b in LATENCY_BUCKETS_MS},
        )
        .order_by()
    )


def quantile_from_buckets(row: dict, total: int, q: float = 0.95) -> tuple[int | None, bool]:
    """The smallest bucket bound holding the q-quantile; (largest bound, True) beyond it."""
    if not total:
        return None, False
    needed = q * total
    for bound in LATENCY_BUCKETS_MS:
        if row[f"le_{bound}"] >= needed:
            return bound, False
    return LATENCY_BUCKETS_MS[-1], True


def subscription_health(
    subscriptions: Sequence[Subscription], now: dt.datetime | None = None
) -> dict[object, Health]:
    """Health of each subscription: four grouped queries whatever their number (the 24 h and
    7-day figures from the hourly rollups, failures in a row from the attempts)."""
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

    # 1. Last 24 hours (24 hourly buckets): attempts, successes and latency per subscription.
    for row in summed_buckets(
        SubscriptionHour, "subscription_id", last_24_hours(now), subscription_id__in=ids
    ):
        health = result[row["subscription_id"]]
        health.attempts_24h, health.succeeded_24h = row["attempts"], row["succeeded"]
        health.p95_ms, health.p95_over = quantile_from_buckets(row, row["attempts"])

    # 2. Last 7 days by calendar day (of the current time zone): the hourly buckets by day.
    daily = (
        SubscriptionHour.objects.filter(subscription_id__in=ids, hour__gte=floor_hour(first_day))
        .annotate(day=TruncDate("hour"))
        .values("subscription_id", "day")
        .annotate(total=Sum("attempts"), ok=Sum("succeeded"))
        .order_by()
    )
    for row in daily:
        for bucket in result[row["subscription_id"]].days:
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
    # Waiting deliveries held back by a cap, by `WaitReason` (Delivery.waiting_for): due or not,
    # they are unsent for a reason the pages show.
    held: dict[str, int] = field(default_factory=dict)


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
    counted_up_to: dt.datetime | None = None  # of the unhealthiest's 24 h figures


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
        held=held_by_reason(),
        due=due["n"],
        oldest_due_age=(now - due["oldest"]).total_seconds() if due["oldest"] else None,
        sending=sending,
        queues=queues,
        # Asked with the queues, for the pages and commands; the metrics keep their own figures.
        retries=retries(now, queues.get(webhook_settings.RETRY_QUEUE)) if with_queues else None,
    )


def held_by_reason() -> dict[str, int]:
    """Waiting deliveries held back by a cap or an ordering key, per `WaitReason` (one grouped
    query)."""
    rows = Delivery.objects.held().values("wait_reason").annotate(n=Count("pk")).order_by()
    return {row["wait_reason"]: row["n"] for row in rows}


def unhealthiest(now: dt.datetime | None = None, limit: int = 10) -> list[Unhealthy]:
    """Endpoints with the most failed attempts in the last 24 hours, most first (then most
    attempts). Three queries over the hourly rollups, never one row per attempt: the hours
    with a failure (a partial index) summed per endpoint for the top `limit`, then all their
    hours for the attempt totals, then the endpoints."""
    now = now or timezone.now()
    since = last_24_hours(now)
    failing = SubscriptionHour.objects.filter(hour__gte=since, attempts__gt=F("succeeded"))
    failed = dict(
        failing.values("subscription_id")
        .annotate(failed=Sum(F("attempts") - F("succeeded")))
        .order_by("-failed", "subscription_id")
        .values_list("subscription_id", "failed")[: limit * 4]
    )
    # The top by failures, with ties broken by attempts: a tie can reach past `limit`, hence
    # the wider first cut.
    totals = dict(
        SubscriptionHour.objects.filter(hour__gte=since, subscription_id__in=list(failed))
        .values("subscription_id")
        .annotate(total=Sum("attempts"))
        .values_list("subscription_id", "total")
        .order_by()
    )
    top = sorted(failed, key=lambda pk: (-failed[pk], -totals.get(pk, 0), str(pk)))[:limit]
    subs = Subscription.objects.in_bulk(top)
    return [Unhealthy(subs[pk], totals[pk], failed[pk]) for pk in top if pk in subs]


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
        counted_up_to=counted_up_to(),
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
    counted_up_to: dt.datetime | None = None  # the 24 h figures count attempts started before

    @property
    def success_rate(self) -> float | None:
        """Share of 2xx attempts in the last 24 hours, 0..1; None without attempts."""
        if not self.attempts_24h:
            return None
        return self.succeeded_24h / self.attempts_24h


def tenant_health(keys: Sequence[str], now: dt.datetime | None = None) -> dict[str, TenantHealth]:
    """Health of each tenant in `keys`: four queries whatever their number (the 24 h figures
    from the tenants' hourly rollups, and how far those are counted)."""
    now = now or timezone.now()
    upto = counted_up_to()
    result = {key: TenantHealth(counted_up_to=upto) for key in keys}
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
    for row in summed_buckets(
        TenantHour, "tenant_id", last_24_hours(now), tenant_id__in=list(result)
    ):
        health = result[row["tenant_id"]]
        health.attempts_24h, health.succeeded_24h = row["attempts"], row["succeeded"]
        health.p95_ms, health.p95_over = quantile_from_buckets(row, row["attempts"])
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
