"""When a waiting delivery will really be sent: at its `next_attempt_at` when a Celery countdown
carries it, or by the sweep when it was parked in the database (a wait longer than
`max_countdown`, see DESIGN.md's "long backoffs"). The sweep takes a delivery once it is
`SWEEP_GRACE` seconds past due, at its next run; runs are one sweep interval apart, so a parked
delivery leaves between `next_attempt_at + SWEEP_GRACE` and that plus the interval.

Pages show this window beside the nominal time, so that "Next attempt 15:38:49" is not read as a
promise the sweep keeps 30 s later.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ..conf import webhook_settings
from ..models import WAITING, Delivery
from ..schedule import sweep_interval


@dataclass(frozen=True)
class PickUp:
    """A waiting delivery's next send. `nominal` is its `next_attempt_at`; `earliest` and
    `latest` bound the sweep's run that sends it, or are None when a countdown message sends it
    at `nominal`."""

    nominal: dt.datetime
    earliest: dt.datetime | None = None
    latest: dt.datetime | None = None

    @property
    def by_sweep(self) -> bool:
        return self.earliest is not None


def is_parked(delivery: Delivery) -> bool:
    """Whether the delivery's wait was parked in the database for the sweep: the wait, from its
    last change (the attempt's end, `updated_at`) to `next_attempt_at`, is longer than a Celery
    countdown may be (`webhook_settings.max_countdown`), as `attempts._ending` decides."""
    if delivery.status not in WAITING or delivery.next_attempt_at is None:
        return False
    if delivery.updated_at is None:
        return False
    wait = (delivery.next_attempt_at - delivery.updated_at).total_seconds()
    return wait > webhook_settings.max_countdown


def next_send(delivery: Delivery) -> PickUp | None:
    """When the waiting `delivery` is sent next; None when it is not waiting."""
    if delivery.status not in WAITING or delivery.next_attempt_at is None:
        return None
    nominal = delivery.next_attempt_at
    if not is_parked(delivery):
        return PickUp(nominal)
    earliest = nominal + dt.timedelta(seconds=float(webhook_settings.SWEEP_GRACE))
    return PickUp(nominal, earliest, earliest + dt.timedelta(seconds=sweep_interval()))
