"""Retrying every delivery that matches a search of the log, at once (after an outage: "retry
every failed delivery matching this"), from the API, the admin and the portal alike.

- The caller passes the deliveries its user may touch (a tenant user's: its tenant's only), and
  the search; this module narrows them to the search and to the statuses a retry may select.
- A dry run answers the count. A real one reopens and queues them, in batches of
  `BATCH_SIZE`, and records who asked, when, from where and with what (`BulkRetry`).
- A request matching more than `WEBHOOKS["BULK_RETRY_MAX"]` deliveries is refused (dry run
  included), so one click never queues a whole table: narrow the search, or retry in slices of
  time.
- Twice is harmless: a delivery is reopened by a guarded UPDATE (`states.reopen_unqueued`) only
  if it is finished or parked for later, never while an attempt of it is queued or under way,
  so a second click (or two at once) queues nothing more for the rows the first one queued.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, replace
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from ..conf import webhook_settings
from ..dispatch import enqueue_attempts
from ..models import BulkRetry, BulkRetrySource, Delivery
from . import ordering, states
from .connections import working_alias
from .incidents import DEFAULT_REPLAY_STATUSES, REPLAYABLE_STATUSES
from .logsearch import DeliverySearch

logger = logging.getLogger(__name__)

#: What a bulk retry may select: what a replay may (`incidents.REPLAYABLE_STATUSES`).
RETRYABLE_STATUSES: tuple[str, ...] = REPLAYABLE_STATUSES
#: What it selects when the search names no status: what an outage leaves undelivered.
DEFAULT_RETRY_STATUSES: tuple[str, ...] = DEFAULT_REPLAY_STATUSES


class BulkRetryError(ValueError):
    """The bulk retry cannot be done; `field` names the offending input ("status", or
    "non_field_errors" for too many matches)."""

    def __init__(self, message: str, *, field: str = "non_field_errors") -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class TooManyMatches(BulkRetryError):
    """More deliveries match than `BULK_RETRY_MAX` allows in one request."""

    def __init__(self, cap: int) -> None:
        super().__init__(
            f"More than {cap} deliveries match; narrow the search (a shorter time range, one "
            f"endpoint) and retry each part. The limit is WEBHOOKS['BULK_RETRY_MAX'].",
        )
        self.cap = cap


@dataclass(frozen=True)
class BulkRetryResult:
    """`count` deliveries matched; `queued` of them were given one more attempt (None for a
    dry run); `record` is the audit row (None for a dry run)."""

    count: int
    queued: int | None
    record: BulkRetry | None


def retry_search(search: DeliverySearch) -> DeliverySearch:
    """`search` with the statuses a retry selects: the default ones when it names none.

    Raises BulkRetryError (field "status") for a status a retry may not select."""
    if not search.statuses:
        return replace(search, statuses=DEFAULT_RETRY_STATUSES)
    refused = [s for s in search.statuses if s not in RETRYABLE_STATUSES]
    if refused:
        raise BulkRetryError(
            f"Cannot retry {', '.join(refused)} deliveries; choose from "
            f"{', '.join(RETRYABLE_STATUSES)}.",
            field="status",
        )
    return search


def matching_ids(scoped: QuerySet[Delivery], search: DeliverySearch, cap: int) -> list[int]:
    """The ids of the deliveries of `scoped` that `search` matches, in id order.

    Raises TooManyMatches when there are more than `cap` (reads `cap + 1` ids at most)."""
    ids = list(search.apply(scoped).order_by("pk").values_list("pk", flat=True)[: cap + 1])
    if len(ids) > cap:
        raise TooManyMatches(cap)
    return ids


def bulk_retry(
    scoped: QuerySet[Delivery],
    search: DeliverySearch,
    *,
    user: Any = None,
    tenant: str | None = None,
    source: str = BulkRetrySource.API,
    dry_run: bool = False,
    criteria: dict[str, Any] | None = None,
) -> BulkRetryResult:
    """Retry the deliveries of `scoped` that `search` matches (default statuses: failed,
    discarded, skipped).

    `scoped` must already be limited to what the asking user may change (its tenant's
    deliveries for a tenant user; the admin's filtered list); `tenant` is recorded as that limit
    ("" or None: cross-tenant), and `criteria` as the search (default: `search.describe()`).
    Returns the count, and unless `dry_run` how many were queued and the `BulkRetry` record.

    Raises BulkRetryError for a status a retry may not select, TooManyMatches above
    `WEBHOOKS["BULK_RETRY_MAX"]`.
    """
    search = retry_search(search)
    cap = int(webhook_settings.BULK_RETRY_MAX)
    ids = matching_ids(scoped, search, cap)
    if dry_run:
        return BulkRetryResult(len(ids), None, None)
    queued = _reopen_and_enqueue(ids)
    username = user.get_username() if user is not None and user.is_authenticated else ""
    record = BulkRetry.objects.create(
        user=user if username else None,
        username=username,
        tenant=tenant or "",
        source=source,
        criteria={**(criteria or {}), **search.describe()},
        matched=len(ids),
        queued=queued,
    )
    logger.info(
        "bulk retry %s by %r tenant=%r matched=%d queued=%d",
        record.pk,
        username,
        tenant or "",
        len(ids),
        queued,
        extra={"bulk_retry": record.pk, "matched": len(ids), "queued": queued},
    )
    return BulkRetryResult(len(ids), queued, record)


def _reopen_and_enqueue(ids: list[int]) -> int:
    """Reopen the deliveries of active endpoints among `ids` that are not already queued, and
    send one message each for the attempt that follows; returns how many. A broker that is
    down loses nothing: the reopened rows are due now and the sweep sends them."""
    batch = max(1, int(webhook_settings.BATCH_SIZE))
    # Waits up to `max_countdown` ride a Celery message; a delivery due before then is queued.
    queued = 0
    for start in range(0, len(ids), batch):
        chunk = list(
            Delivery.objects.using(working_alias())
            .filter(pk__in=ids[start : start + batch], subscription__is_active=True)
            .order_by()
            .values_list("pk", flat=True)
        )
        now = timezone.now()
        queued_until = now + dt.timedelta(seconds=webhook_settings.max_countdown)
        reopened = states.reopen_unqueued(chunk, now, queued_until)
        if not reopened:
            continue
        # Keyed deliveries keep their order (`ordering.after_reopen`): the held ones are sent
        # when their turn comes.
        held = ordering.after_reopen(reopened)
        items = list(
            Delivery.objects.using(working_alias())
            .filter(pk__in=reopened)
            .order_by("pk")
            .values_list("pk", "attempts")
        )
        enqueue_attempts([(pk, attempts + 1) for pk, attempts in items if pk not in held])
        ordering.recheck(held)
        queued += len(items)
    return queued


__all__ = [
    "DEFAULT_RETRY_STATUSES",
    "RETRYABLE_STATUSES",
    "BulkRetryError",
    "BulkRetryResult",
    "TooManyMatches",
    "bulk_retry",
    "matching_ids",
    "retry_search",
]
