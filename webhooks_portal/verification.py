"""The signature-verification page's example: a real recent delivery of the tenant, or one
signed on the spot when it has none yet, so the reader can check their code against it."""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.utils import timezone

from deliveries.models import Event
from deliveries.payloads import build_body, content_type
from deliveries.services.sent import request_sent
from deliveries.signing import signature_header
from subscriptions.models import PayloadFormat, Subscription
from subscriptions.secrets import generate_secret
from webhooks_core.ids import uuid7

from . import scope

SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


@dataclass(frozen=True)
class SignedExample:
    """A delivery's signed parts. `secret` is set only for a made-up example (the demo secret,
    never an endpoint's); `subscription` names the endpoint whose secret verifies a real one."""

    headers: dict[str, str]
    body: str
    source: str  # "delivery" or "generated"
    subscription: Subscription | None = None
    delivery_id: int | None = None
    secret: str | None = None
    sent_at: object = None


def example_for(tenant: str) -> SignedExample:
    """The tenant's latest attempted delivery with its signature headers, or a demo example."""
    delivery = (
        scope.deliveries(tenant)
        .filter(attempts__gt=0)
        .select_related("event", "subscription")
        .first()
    )
    if delivery is not None:
        sent = request_sent(delivery)
        headers = {k: v for k, v in sent.headers.items() if k.lower() in SIGNATURE_HEADERS}
        if len(headers) == len(SIGNATURE_HEADERS):
            headers["content-type"] = sent.content_type
            return SignedExample(
                headers=headers,
                body=sent.body.decode("utf-8"),
                source="delivery",
                subscription=delivery.subscription,
                delivery_id=delivery.pk,
                sent_at=delivery.created_at,
            )
    return generated_example()


def generated_example() -> SignedExample:
    """An example signed now with a fresh demo secret that is shown beside it."""
    secret = generate_secret()
    now = timezone.now()
    event = Event(
        id=uuid7(),
        type="order.created",
        data={"id": 1001, "total": "42.00", "currency": "EUR"},
        created_at=now,
    )
    body = build_body(event, PayloadFormat.STANDARD)
    timestamp = int(time.time())
    headers = {
        "content-type": content_type(PayloadFormat.STANDARD),
        "webhook-id": str(event.id),
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header([secret], str(event.id), timestamp, body),
    }
    return SignedExample(
        headers=headers, body=body.decode("utf-8"), source="generated", secret=secret, sent_at=now
    )


def example_code(example: SignedExample) -> str:
    """A Python program that verifies `example` with the receiver toolkit, ready to paste.

    The example's time is passed as `now`, so its age does not make it fail; a real receiver
    leaves `now` out and so refuses deliveries older than five minutes (replayed requests).
    """
    secret = example.secret or "whsec_..."  # a real endpoint's secret is never shown again
    headers = {k: v for k, v in example.headers.items() if k in SIGNATURE_HEADERS}
    lines = [
        "from webhooks_receiver import WebhookError, verify",
        "",
        f"secret = {secret!r}"
        + ("" if example.secret else "  # your endpoint's secret, shown when you created it"),
        f"body = {example.body.encode('utf-8')!r}",
        "headers = {",
        *(f"    {name!r}: {value!r}," for name, value in headers.items()),
        "}",
        "",
        "try:",
        f"    payload = verify(secret, body, headers, now={int(headers['webhook-timestamp'])})",
        "except WebhookError as exc:",
        "    print('refused:', exc.status, exc)",
        "else:",
        "    print('valid:', payload['type'])",
    ]
    return "\n".join(lines)
