"""The sweep: the database, not the broker, decides what still has to be sent.

Run periodically by beat. It finds (1) events whose fan-out never ran, (2) deliveries claimed by
a worker that vanished, (3) deliveries that are due but whose message never came (lost in a Redis
restart, refused by a broker that was down, or parked because the wait was too long for a Celery
countdown), and sends them, in batches. While the queues hold more than a batch of messages it
leaves (3) alone: the workers are behind, and those messages are most likely in the backlog.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from .. import tracing
from ..conf import webhook_settings
from ..dispatch import backlog, enqueue_attempts
from ..models import Delivery, Event
from . import clock, fairness, ordering, states
from .attempts import retry_delay
from .connections import working_alias
from .publishing import fan_out

logger = logging.getLogger(__name__)


@dataclass
class SweepReport:
    fanned_out: int = 0
    released: int = 0
    enqueued: int = 0
    # Set when the due deliveries were left alone because the queues hold a backlog.
    backlog: int = 0
    # Held deliveries of an ordering key released because their head had ended.
    released_keys: int = 0

    def __bool__(self) -> bool:
        return bool(self.fanned_out or self.released or self.enqueued or self.released_keys)


def sweep(now: dt.datetime | None = None, *, max_batches: int = 10) -> SweepReport:
    """One pass of the sweep. `now` (default: the database's time, `clock.now()`) dates the
    grace periods; stale claims are judged on the database's clock inside the statement."""
    now = now or clock.now()
    alias = working_alias()
    grace = dt.timedelta(seconds=float(webhook_settings.SWEEP_GRACE))
    batch = int(webhook_settings.BATCH_SIZE)
    report = SweepReport()

    late = Event.objects.using(alias).not_fanned_out(now - grace)
    for event_id, traceparent in late.values_list("pk", "traceparent")[:batch]:
        try:
            with tracing.resumed(traceparent):  # the publish's trace, when it was traced
                fan_out(event_id)
        except Exception:
            # One event that cannot be fanned out must not stop the rest of the sweep.
            logger.exception("sweep could not fan out event %s", event_id)
            continue
        report.fanned_out += 1

    lease = float(webhook_settings.stale_sending_after)
    stale = states.expired_claims(lease).values_list("pk", "attempts", "claimed_at")
    for delivery_id, number, claimed_at in stale[:batch]:
        if claimed_at is None:  # never: an expired claim is one with a claim time
            continue
        report.released += _expire(delivery_id, number, claimed_at, lease)

    # Ordering's safety net: what a dead worker left held behind a finished head goes now.
    report.released_keys = ordering.sweep(batch)

    if max_batches and fairness.cap() is not None:
        # Fair dispatch: each tenant's due deliveries whose message is not out, oldest due
        # first, up to its share of the broker (services.fairness). The broker's backlog is
        # no reason to wait here: what is out is counted, so nothing is sent twice.
        report.enqueued += fairness.sweep(now - grace)
        max_batches = 0
    waiting = backlog() if max_batches else None
    if waiting is not None and waiting > batch:
        # Workers are behind: due rows most likely have their message in that backlog. Adding
        # another would only lengthen it; lost messages are picked up once it has drained.
        report.backlog = waiting
        max_batches = 0
    last_pk = 0
    for _ in range(max_batches):
        # Walk by primary key: the rows leased below stay due when SWEEP_GRACE is 0, and must
        # not come round again in this same sweep.
        due = list(
            Delivery.objects.using(alias)
            .due(now - grace)
            .filter(pk__gt=last_pk)
            .order_by("pk")
            .values_list("pk", "attempts")[:batch]
        )
        if not due:
            break
        last_pk = due[-1][0]
        # Lease them: their due time moves to now, so the next sweep leaves them alone for
        # `SWEEP_GRACE` while these messages are on their way.
        states.postpone(pk for pk, _ in due)
        report.enqueued += enqueue_attempts((pk, attempts + 1) for pk, attempts in due)
        if len(due) < batch:
            break
    if report:
        logger.info(
            "sweep fanned_out=%d released=%d enqueued=%d released_keys=%d",
            report.fanned_out,
            report.released,
            report.enqueued,
            report.released_keys,
        )
    if report.backlog:
        logger.info("sweep left due deliveries alone: %d messages queued", report.backlog)
    return report


def _expire(delivery_id: int, number: int, claimed_at: dt.datetime, lease: float) -> int:
    """Record the interrupted attempt and make the delivery due again (or failed if that was
    its last attempt). The receiver may have got the request: receivers dedupe on webhook-id."""
    last = retry_delay(number) is None
    if not states.expire(delivery_id, number, claimed_at, lease_seconds=lease, last=last):
        return 0
    if not last:
        enqueue_attempts([(delivery_id, number + 1)])
    return 1
