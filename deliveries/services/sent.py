"""What a delivery sent, for the people who inspect it (the admin, the customer portal)."""

from __future__ import annotations

from dataclasses import dataclass

from ..models import Delivery
from ..payloads import build_body, content_type


@dataclass(frozen=True)
class SentRequest:
    """The request of a delivery's latest attempt.

    `headers` are the headers as sent, as stored on the attempt: the pipeline's own headers in
    clear, every custom header's value masked as "[redacted]", whatever its name
    (`attempts.redact`). Empty before the first attempt. `body` is rebuilt from the event:
    it depends only on the event and the payload format (deliveries/payloads.py), so every
    attempt sent exactly these bytes.
    """

    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    content_type: str
    attempt: int | None  # the attempt the headers come from


def request_sent(delivery: Delivery) -> SentRequest:
    """The request of the delivery's latest attempt (one query for the attempt)."""
    last = delivery.attempt_set.order_by("-number").first()
    subscription = delivery.subscription
    return SentRequest(
        method="POST",
        url=subscription.url,
        headers=dict(sorted((last.request_headers or {}).items())) if last else {},
        body=build_body(delivery.event, subscription.payload_format, delivery.version),
        content_type=content_type(subscription.payload_format),
        attempt=last.number if last else None,
    )
