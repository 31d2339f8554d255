"""Prometheus metrics, read from the database at scrape time.

Deliveries are sent by Celery workers in other processes (often on other machines), so counters
kept in the web process would only see what that process did. A custom Collector instead asks
the database, the source of truth, on every scrape: the figures are the same whichever process
answers and survive restarts.

The attempt latency is exposed as a *gauge histogram* over a sliding window (`METRICS_WINDOW`
seconds of attempts, by `started_at`), not as a cumulative counter histogram: attempt rows are
pruned after `RETENTION_DAYS`, so counts read from the table go down, and Prometheus would take
every drop for a counter reset. Read it without `rate()`:
`histogram_quantile(0.95, webhooks_attempt_duration_seconds_bucket)` is the p95 of the window.
For the same reason attempts by outcome are a gauge over the same window, and so are finished
deliveries (`webhooks_deliveries_window`, by creation time); unfinished deliveries are a gauge
of every such row. No figure counts the whole stored history: a scrape costs the same with
30 days of deliveries as with one (every query reads an index range bounded by the window or
by the backlog).

Opt-in: the endpoint answers 404 unless `WEBHOOKS["METRICS_ENABLED"]`. Then it requires either
`Authorization: Bearer <METRICS_TOKEN>` (when a token is set) or a logged-in staff user.
"""

from __future__ import annotations

import datetime as dt
import hmac
import threading
import time
from collections.abc import Iterator

from django.db.models import Count, Q, Sum
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeHistogramMetricFamily, GaugeMetricFamily, Metric

from subscriptions.models import Subscription

from .conf import webhook_settings
from .models import FINISHED, UNFINISHED, DeliveryAttempt, WaitReason
from .services import clock, health


class DatabaseCollector:
    """Collects every webhooks metric from the database when scraped (eight bounded queries,
    and the subscription count once a minute)."""

    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        window = int(webhook_settings.METRICS_WINDOW)

        # Never a count of all stored history (it grows with RETENTION_DAYS, not traffic):
        # unfinished deliveries exactly, finished ones created within the window.
        counts = health.status_counts(now, window)
        deliveries = GaugeMetricFamily(
            "webhooks_deliveries",
            "Unfinished deliveries by status (pending, sending, retrying).",
            labels=["status"],
        )
        for status in UNFINISHED:
            deliveries.add_metric([status], counts.get(status, 0))
        yield deliveries
        finished = GaugeMetricFamily(
            "webhooks_deliveries_window",
            f"Deliveries created in the last {window} s that are finished, by status.",
            labels=["status"],
        )
        for status in FINISHED:
            finished.add_metric([status], counts.get(status, 0))
        yield finished

        attempts = DeliveryAttempt.objects.filter(
            started_at__gte=now - dt.timedelta(seconds=window)
        )
        by_outcome = GaugeMetricFamily(
            "webhooks_attempts_window",
            f"Attempts started in the last {window} s, by outcome.",
            labels=["outcome"],
        )
        outcomes = dict.fromkeys(health.OUTCOMES, 0)
        rows = attempts.values("response_status", "error_kind").annotate(n=Count("pk")).order_by()
        for row in rows:
            outcomes[health.outcome_of(row["response_status"], row["error_kind"])] += row["n"]
        for outcome, n in outcomes.items():
            by_outcome.add_metric([outcome], n)
        yield by_outcome

        buckets = attempts.aggregate(
            total=Count("pk"),
            duration=Sum("duration_ms"),
            **{
                f"le_{b}": Count("pk", filter=Q(duration_ms__lte=b))
                for b in health.LATENCY_BUCKETS_MS
            },
        )
        yield GaugeHistogramMetricFamily(
            "webhooks_attempt_duration_seconds",
            f"Duration of the attempts started in the last {window} s (gauge histogram).",
            buckets=[
                *((str(b / 1000), buckets[f"le_{b}"]) for b in health.LATENCY_BUCKETS_MS),
                ("+Inf", buckets["total"]),
            ],
            gsum_value=(buckets["duration"] or 0) / 1000,
        )

        throttled = attempts.aggregate(
            total=Count("pk"),
            waited=Sum("throttled_ms"),
            **{
                f"le_{b}": Count("pk", filter=Q(throttled_ms__lte=b))
                for b in THROTTLED_BUCKETS_MS
            },
        )
        # Latency that a rate or a cap adds never hides: the wait before each attempt is sent
        # (DeliveryAttempt.throttled_ms), beside its duration.
        yield GaugeHistogramMetricFamily(
            "webhooks_attempt_throttled_seconds",
            f"Time the attempts started in the last {window} s waited on their endpoint's rate "
            "or an in-flight cap before they were sent (gauge histogram).",
            buckets=[
                *((str(b / 1000), throttled[f"le_{b}"]) for b in THROTTLED_BUCKETS_MS),
                ("+Inf", throttled["total"]),
            ],
            gsum_value=(throttled["waited"] or 0) / 1000,
        )

        backlog = health.backlog(now, with_queues=False)
        yield GaugeMetricFamily(
            "webhooks_backlog_due",
            "Deliveries due for an attempt but not sent yet.",
            value=backlog.due,
        )
        yield GaugeMetricFamily(
            "webhooks_backlog_oldest_due_seconds",
            "Seconds since the oldest due delivery became due (0 when none is due).",
            value=backlog.oldest_due_age or 0,
        )
        held = GaugeMetricFamily(
            "webhooks_backlog_held",
            "Waiting deliveries held back without an attempt, by reason (endpoint_cap, "
            "tenant_cap: an in-flight cap; rate: the endpoint's max_rate; retry_after: a 429's "
            "pause; ordering: behind an earlier delivery of their ordering key): unsent.",
            labels=["reason"],
        )
        counts = health.held_by_reason()
        for reason in WaitReason.values:
            if reason:
                held.add_metric([reason], counts.get(reason, 0))
        yield held
        subs = GaugeMetricFamily(
            "webhooks_subscriptions",
            f"Subscriptions by state (counted at most every {SUBSCRIPTION_COUNT_TTL:.0f} s).",
            labels=["state"],
        )
        states = subscription_states()
        subs.add_metric(["active"], states.get(True, 0))
        subs.add_metric(["disabled"], states.get(False, 0))
        yield subs

        offsets = GaugeMetricFamily(
            "webhooks_clock_offset_seconds",
            "Each worker's clock offset from the database's, as last measured (positive: the "
            f"worker is behind); above {webhook_settings.CLOCK_OFFSET_LIMIT} s "
            "(CLOCK_OFFSET_LIMIT) its webhook-timestamp headers are off by as much.",
            labels=["worker"],
        )
        for worker_clock in clock.recent_offsets():
            offsets.add_metric([worker_clock.worker], worker_clock.offset_seconds)
        yield offsets


# Buckets of the throttled-wait histogram, in ms: none, then a second to an hour.
THROTTLED_BUCKETS_MS = (0, 1000, 5000, 30_000, 60_000, 300_000, 3_600_000)


# Counting every endpoint by state reads the whole subscription table (124 ms at 100,000
# endpoints): a figure that grows with customers and moves slowly, so each process counts it
# at most once a minute and answers the scrapes in between from that count.
SUBSCRIPTION_COUNT_TTL = 60.0
_states: tuple[float, dict[bool, int]] | None = None
_states_lock = threading.Lock()


def subscription_states() -> dict[bool, int]:
    """Subscriptions by `is_active` ({True: n, False: m}; absent when none), counted at most
    once per `SUBSCRIPTION_COUNT_TTL` seconds per process (so up to that old)."""
    global _states
    with _states_lock:
        if _states is None or time.monotonic() - _states[0] >= SUBSCRIPTION_COUNT_TTL:
            rows = Subscription.objects.values("is_active").annotate(n=Count("pk")).order_by()
            _states = (time.monotonic(), {row["is_active"]: row["n"] for row in rows})
        return _states[1]


registry = CollectorRegistry(auto_describe=False)
registry.register(DatabaseCollector())


def is_allowed(request: HttpRequest) -> bool:
    token = webhook_settings.METRICS_TOKEN
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        # Compared as bytes: compare_digest refuses non-ASCII str (a 500 for a stray header).
        if scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), str(token).encode()
        ):
            return True
    # The figures cover every tenant: a model permission, as in the admin, not `is_staff`.
    user = getattr(request, "user", None)
    return bool(user and user.is_authenticated and user.has_perm("deliveries.view_delivery"))


def metrics_view(request: HttpRequest) -> HttpResponse:
    if not webhook_settings.METRICS_ENABLED:
        raise Http404("Metrics are disabled.")
    if not is_allowed(request):
        response = HttpResponse("Authentication required.\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="webhooks-metrics"'
        return response
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
