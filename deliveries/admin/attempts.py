"""A delivery's attempts as rows of one compact table on its admin page
(`deliveries/admin/attempts.html`): time to the second, status, duration, error kind and an
excerpt of the answer, with the headers and the whole stored body behind a disclosure."""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..models import Delivery, DeliveryAttempt
from ..summaries import summarize
from .common import at_seconds

# Characters of the response body (or error) shown in the table; the rest is in the details.
EXCERPT_LENGTH = 120


@dataclass(frozen=True)
class AttemptRow:
    attempt: DeliveryAttempt
    started: str  # safe HTML (at_seconds)
    status: str  # "200", "500", or "-" without an answer
    succeeded: bool
    error_kind: str  # label, "" for none
    summary: str  # one line by kind (deliveries.summaries), "" for a success
    excerpt: str
    request_headers: str  # pretty JSON
    response_headers: str  # pretty JSON


def excerpt(text: str, limit: int = EXCERPT_LENGTH) -> str:
    """`text` on one line (runs of whitespace as one space), cut to `limit` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def attempt_rows(delivery: Delivery) -> list[AttemptRow]:
    """The delivery's attempts, oldest first, ready for the table (one query)."""
    rows = []
    for attempt in delivery.attempt_set.order_by("number"):
        status = attempt.response_status
        rows.append(
            AttemptRow(
                attempt=attempt,
                started=at_seconds(attempt.started_at),
                status=str(status) if status is not None else "-",
                succeeded=attempt.succeeded,
                error_kind=attempt.get_error_kind_display() if attempt.error_kind else "",
                summary=summarize(
                    attempt.error_kind, status, attempt.error, delivery.subscription.url
                ),
                excerpt=excerpt(attempt.response_body or attempt.error),
                request_headers=_pretty(attempt.request_headers),
                response_headers=_pretty(attempt.response_headers),
            )
        )
    return rows


def _pretty(value: object) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
