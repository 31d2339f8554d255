"""Helpers of the fault tests: the tally of what a receiver and the database saw, the sweep
run by hand, and the one-line report each fault test appends to var/fault-runs.txt."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from deliveries.models import Delivery, DeliveryAttempt, DeliveryStatus, Event
from deliveries.services import publish
from deliveries.services.sweeping import sweep

REPORT = Path(__file__).resolve().parent.parent / "var" / "fault-runs.txt"
FINISHED = (DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED, DeliveryStatus.DISCARDED)


def fault_line(name: str, sent: int, delivered: int, lost: int, dup: int, recover: float) -> str:
    line = (
        f"FAULT {name:<28} sent={sent:<5} delivered={delivered:<5} lost={lost:<3} "
        f"duplicated={dup:<4} recover_s={recover:.1f}"
    )
    print(line)
    REPORT.parent.mkdir(exist_ok=True)
    with REPORT.open("a") as out:
        out.write(line + "\n")
    return line


def tally(events: list[Event], receiver, path: str) -> dict:
    """What the database and the receiver say about `events`."""
    ids = {str(event.pk) for event in events}
    posts = Counter(r.headers.get("webhook-id") for r in receiver.requests_to(path))
    delivered = Delivery.objects.filter(event__in=events, status=DeliveryStatus.SUCCEEDED).count()
    # A POST is expected again after a non-2xx answer; any other repeat reached a receiver that
    # had already accepted the webhook (e.g. the worker died before recording the 200).
    refused = Counter(
        str(event_id)
        for event_id in DeliveryAttempt.objects.filter(
            delivery__event__in=events, response_status__isnull=False
        )
        .exclude(response_status__range=(200, 299))
        .values_list("delivery__event_id", flat=True)
    )
    return {
        "sent": len(events),
        "delivered": delivered,
        "lost": len(events) - delivered + len(ids - set(posts)),
        "duplicated": sum(1 for wid in ids if posts[wid] > 1 + refused[wid]),
        "max_posts": max((posts[wid] for wid in ids), default=0),
    }


def sweep_until(predicate, timeout: float = 60, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        sweep()
        time.sleep(interval)
    return bool(predicate())


def all_succeeded(events: list[Event]) -> bool:
    return Delivery.objects.filter(
        event__in=events, status=DeliveryStatus.SUCCEEDED
    ).count() == len(events)


def publish_many(n: int) -> list[Event]:
    return [publish("order.created", {"n": i}) for i in range(n)]


def row(result: dict) -> dict:
    return {
        "sent": result["sent"],
        "delivered": result["delivered"],
        "lost": result["lost"],
        "dup": result["duplicated"],
    }
