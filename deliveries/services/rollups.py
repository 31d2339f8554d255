"""Hourly rollups of attempt outcomes per subscription and per tenant, so health figures cost
the same whatever the traffic.

The 24 h figures of the tenant list, the dashboard and the subscription list used to read every
attempt of their window: O(traffic), seconds at 10 M deliveries a day. Instead a periodic task
(`roll_up`, every minute from beat: deliveries/schedule.py) counts the attempts started since a
stored watermark (`RollupMark`) into one row per subscription and hour (`SubscriptionHour`) and
per tenant and hour (`TenantHour`); the health figures sum at most 24 of them per subscription
or tenant (health.py). Nothing runs on the delivery path: a worker writes its attempt row as
before and knows nothing of this.

Correctness:
- An attempt row is written once, when the attempt ends, at most `stale_sending_after` seconds
  after its `started_at` (a claim older than that is released by the sweep). So a run counts
  only attempts started before `now - stale_sending_after` (`settled_before`): later rows of an
  earlier start cannot appear after they were counted. The figures are therefore at most one
  run interval plus `stale_sending_after` old (about two minutes with the defaults).
- Each step covers [mark, next) within one UTC hour and moves the mark with a guarded UPDATE
  (`upto = mark` → `next`) in the same transaction as the bucket writes. A second run at once
  either blocks on that row and then finds the mark moved (it skips, having counted nothing) or
  reads the new mark: no attempt is counted twice, none is skipped. The buckets are upserted
  with the sums (existing + new) computed under that lock.
- Buckets older than `KEEP` are deleted by the same task (the 7-day chart needs 7 days).

Reads: the attempts' `started_at` index, a range of one step; the buckets of one hour.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count

from ..conf import webhook_settings
from ..models import AttemptCounts, DeliveryAttempt, RollupMark, SubscriptionHour, TenantHour
from . import clock
from .health import LATENCY_BUCKETS_MS, OK, ROLLUP_MARK, bucket_counts, floor_hour

logger = logging.getLogger(__name__)

MARK = ROLLUP_MARK
HOUR = dt.timedelta(hours=1)
# Kept for the 7-day chart of the subscription pages, plus a day.
KEEP = dt.timedelta(days=8)
# A first run (or one after a long stop) counts back this far, not the whole history.
BACKFILL = dt.timedelta(days=7)
# One run stops after this many seconds (less than its 60 s beat interval); the next continues.
TIME_BUDGET = 45.0
# The figures of a bucket: the columns of AttemptCounts.
COUNTS: tuple[str, ...] = ("attempts", "succeeded", *(f"le_{b}" for b in LATENCY_BUCKETS_MS))


@dataclass
class RolledUp:
    """What one run did: attempts counted, steps taken (each one UTC hour or less), the mark
    it left, and whether it caught up (False: the time budget ran out first)."""

    attempts: int
    steps: int
    upto: dt.datetime
    done: bool


def settled_before(now: dt.datetime) -> dt.datetime:
    """Every attempt started before this moment is stored (see the module's docstring)."""
    return now - dt.timedelta(seconds=webhook_settings.stale_sending_after)


def current_mark(now: dt.datetime | None = None) -> dt.datetime:
    """Where counting stands: every attempt started before it is in the buckets. A first
    call starts the mark `BACKFILL` back (hour-aligned)."""
    now = now or clock.now()
    start = floor_hour(now - BACKFILL)
    try:
        mark, _ = RollupMark.objects.get_or_create(name=MARK, defaults={"upto": start})
    except IntegrityError:  # another run created it at the same moment
        mark = RollupMark.objects.get(name=MARK)
    return mark.upto


def roll_up(now: dt.datetime | None = None, budget: float = TIME_BUDGET) -> RolledUp:
    """Count the attempts started since the mark into the hourly buckets, one step (≤ 1 hour of
    attempts) at a time, until caught up with `settled_before(now)` or `budget` seconds are
    spent; then delete buckets older than `KEEP`. Safe to run twice at once."""
    # The database's time (attempts' started_at is stamped with it), not this worker's own.
    now = now or clock.now()
    until = settled_before(now)
    deadline = time.monotonic() + budget
    counted = steps = 0
    mark = current_mark(now)
    while mark < until and time.monotonic() < deadline:
        step_end = min(floor_hour(mark) + HOUR, until)
        n = count_step(mark, step_end)
        if n is None:  # another run moved the mark: carry on from where it is now
            mark = current_mark(now)
            continue
        counted += n
        steps += 1
        mark = step_end
    cutoff = floor_hour(now - KEEP)
    SubscriptionHour.objects.filter(hour__lt=cutoff).delete()
    TenantHour.objects.filter(hour__lt=cutoff).delete()
    done = mark >= until
    if not done:
        logger.warning("attempt rollup behind: counted up to %s of %s", mark, until)
    return RolledUp(attempts=counted, steps=steps, upto=mark, done=done)


def count_step(start: dt.datetime, end: dt.datetime) -> int | None:
    """Count the attempts started in [start, end) (one UTC hour or less) into that hour's
    buckets, if the mark still reads `start`; returns how many were counted, or None when
    another run moved the mark first (nothing written)."""
    hour = floor_hour(start)
    if floor_hour(end - dt.timedelta(microseconds=1)) != hour:
        raise ValueError("a rollup step stays within one hour")
    with transaction.atomic():
        # The guard: moves the mark and holds its row until commit. A concurrent run blocks
        # here, then matches no row (the mark moved) and writes nothing.
        if not RollupMark.objects.filter(name=MARK, upto=start).update(upto=end):
            return None
        sub = "delivery__subscription_id"
        tenant = "delivery__subscription__tenant_id"
        rows = list(
            DeliveryAttempt.objects.filter(started_at__gte=start, started_at__lt=end)
            .values(sub, tenant)
            .annotate(
                attempts=Count("pk"),
                succeeded=Count("pk", filter=OK),
                **bucket_counts(),
            )
            .order_by()
        )
        by_tenant: dict[str, dict[str, int]] = {}
        # An attempt of a deleted endpoint (none today; deletes that keep history may make
        # some) belongs to no bucket.
        rows = [row for row in rows if row[sub] is not None]
        for row in rows:
            totals = by_tenant.setdefault(row[tenant], dict.fromkeys(COUNTS, 0))
            for name in COUNTS:
                totals[name] += row[name]
        _add(SubscriptionHour, "subscription_id", hour, {row[sub]: row for row in rows})
        _add(TenantHour, "tenant_id", hour, by_tenant)
        return sum(row["attempts"] for row in rows)


def _add(
    model: type[SubscriptionHour] | type[TenantHour],
    key: str,
    hour: dt.datetime,
    counts: Mapping[Any, Mapping[str, int]],
) -> None:
    """Add `counts` (key value → figures) to `model`'s buckets of `hour`: read the existing
    ones, write the sums in one upsert per batch (the mark's lock keeps other runs out)."""
    if not counts:
        return
    existing = {
        getattr(bucket, key): bucket
        for bucket in _in_batches(model.objects.filter(hour=hour), key, list(counts))
    }
    buckets: list[Any] = []  # of `model`
    for value, figures in counts.items():
        old = existing.get(value)
        buckets.append(
            model(
                hour=hour,
                **{key: value},
                **{n: figures[n] + (getattr(old, n) if old else 0) for n in COUNTS},
            )
        )
    model.objects.bulk_create(
        buckets,
        batch_size=500,
        update_conflicts=True,
        unique_fields=[key.removesuffix("_id"), "hour"],
        update_fields=list(COUNTS),
    )


def _in_batches(queryset, key: str, values: list, size: int = 500) -> Iterable[AttemptCounts]:
    for i in range(0, len(values), size):
        yield from queryset.filter(**{f"{key}__in": values[i : i + size]})
