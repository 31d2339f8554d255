"""How long an endpoint's deliveries wait on its rate and its caps: the figure the admin and
the portal show beside the endpoint, so that throttling never hides latency.

Two sources, both the database: deliveries held back now (`Delivery.held()`, by reason), and
the wait each attempt had before it was sent (`DeliveryAttempt.throttled_ms`) over a window.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

from django.db.models import Count, Max, Q
from django.utils import timezone

from ..models import Delivery, DeliveryAttempt, WaitReason

# The window of the wait figures, in seconds.
WINDOW = 3600


@dataclass(frozen=True)
class EndpointWaits:
    """An endpoint's waits: `held` deliveries waiting now by `WaitReason` value; of the
    `attempts` started in the last `window` seconds, how many `waited` before being sent, and
    the median and longest of those waits (ms; None when none waited)."""

    held: dict[str, int] = field(default_factory=dict)
    attempts: int = 0
    waited: int = 0
    p50_ms: int | None = None
    max_ms: int | None = None
    window: int = WINDOW

    @property
    def on_rate(self) -> int:
        """Deliveries waiting on the endpoint's rate or a 429's Retry-After now."""
        return self.held.get(WaitReason.RATE, 0) + self.held.get(WaitReason.RETRY_AFTER, 0)

    @property
    def p50_text(self) -> str:
        return seconds(self.p50_ms)

    @property
    def max_text(self) -> str:
        return seconds(self.max_ms)

    @property
    def on_cap(self) -> int:
        """Deliveries waiting on an in-flight cap (the endpoint's or its tenant's) now."""
        return self.held.get(WaitReason.ENDPOINT_CAP, 0) + self.held.get(WaitReason.TENANT_CAP, 0)


def seconds(ms: int | None) -> str:
    """A wait for display: "1.2 s", "-" for none."""
    return "-" if ms is None else f"{ms / 1000:.1f} s"


def endpoint_waits(
    subscription_id: uuid.UUID | str, now: dt.datetime | None = None
) -> EndpointWaits:
    """The wait figures of one endpoint (three bounded queries: the held deliveries of the
    endpoint, and its attempts of the last WINDOW seconds, counted then the median read)."""
    now = now or timezone.now()
    held = {
        row["wait_reason"]: row["n"]
        for row in Delivery.objects.held()
        .filter(subscription_id=subscription_id)
        .values("wait_reason")
        .annotate(n=Count("pk"))
        .order_by()
    }
    recent = DeliveryAttempt.objects.filter(
        delivery__subscription_id=subscription_id,
        started_at__gte=now - dt.timedelta(seconds=WINDOW),
    )
    totals = recent.aggregate(
        attempts=Count("pk"),
        waited=Count("pk", filter=_waited()),
        longest=Max("throttled_ms"),
    )
    waited = int(totals["waited"] or 0)
    p50 = None
    if waited:
        ordered = recent.filter(_waited()).order_by("throttled_ms")
        p50 = ordered.values_list("throttled_ms", flat=True)[waited // 2]
    return EndpointWaits(
        held=held,
        attempts=int(totals["attempts"] or 0),
        waited=waited,
        p50_ms=p50,
        max_ms=int(totals["longest"]) if waited else None,
    )


def _waited() -> Q:
    return Q(throttled_ms__gt=0)
