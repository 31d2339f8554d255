"""One delivery attempt: claim, sign, send, record, decide what comes next.

Four queries on the common path: the claim, the load (delivery, event and subscription in one
SELECT), the attempt INSERT and the guarded finishing UPDATE.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import random
from dataclasses import dataclass
from typing import Literal

from django.db import transaction
from django.utils import timezone

from subscriptions.conf import webhook_settings
from subscriptions.models import Subscription
from subscriptions.services import disable_subscription

from .. import signals
from ..models import Delivery, DeliveryAttempt, ErrorKind
from ..payloads import build_body, content_type
from ..signing import signature_header
from ..transport import SendResult, send
from . import states
from .connections import release_pooled_connection

logger = logging.getLogger("deliveries.attempts")

# Answers worth trying again: the receiver may accept later. Every other 4xx is final.
RETRYABLE_STATUSES = frozenset({408, 409, 425, 429})
RETRY_AFTER_STATUSES = frozenset({429, 503})
# A Retry-After beyond this is clamped: a receiver cannot park a delivery for a month.
MAX_RETRY_AFTER = 86400

# Header values we never store in clear on the attempt row.
SENSITIVE_HEADER_WORDS = ("authorization", "cookie", "token", "secret", "key", "password")

Action = Literal["done", "retry", "park", "skip"]


@dataclass(frozen=True)
class Outcome:
    action: Action
    next_attempt: int = 0
    countdown: float = 0.0


def retry_delay(attempts_done: int, rng: random.Random | None = None) -> float | None:
    """Seconds before attempt `attempts_done + 1`, jitter included; None when none is left."""
    schedule = list(webhook_settings.RETRY_SCHEDULE)
    if attempts_done >= len(schedule):
        return None
    base = float(schedule[attempts_done])
    jitter = float(webhook_settings.RETRY_JITTER)
    return base + (rng or random).uniform(0, base * jitter) if base > 0 else 0.0


def parse_retry_after(value: str | None, now: dt.datetime) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date), clamped to a sane range."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        seconds = (when - now).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def is_retryable(result: SendResult) -> bool:
    if result.status is None:
        # Timeouts and refused connections retry; a blocked or invalid destination will not
        # become valid by waiting.
        return result.error_kind in (ErrorKind.TIMEOUT, ErrorKind.CONNECTION)
    return (
        result.status >= 500
        or result.status in RETRYABLE_STATUSES
        or result.error_kind
        in (
            ErrorKind.TIMEOUT,
            ErrorKind.CONNECTION,
        )
    )


def build_headers(
    delivery: Delivery, body: bytes, timestamp: int, now: dt.datetime
) -> dict[str, str]:
    subscription = delivery.subscription
    msg_id = str(delivery.event_id)
    headers = {
        str(name): str(value)
        for name, value in (subscription.headers or {}).items()
        if not _is_reserved(str(name))
    }
    headers.update(
        {
            "content-type": content_type(subscription.payload_format),
            "user-agent": webhook_settings.USER_AGENT,
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(
                subscription.signing_secrets(now), msg_id, timestamp, body
            ),
        }
    )
    return headers


def _is_reserved(name: str) -> bool:
    lowered = name.lower()
    return lowered.startswith("webhook-") or lowered in {"content-type", "host", "user-agent"}


def redact(headers: dict[str, str]) -> dict[str, str]:
    return {
        name: ("[redacted]" if any(w in name.lower() for w in SENSITIVE_HEADER_WORDS) else value)
        for name, value in headers.items()
    }


def attempt_delivery(delivery_id: int, number: int, task_id: str = "") -> Outcome:
    """Run attempt `number` of a delivery, at most once whatever the number of messages."""
    now = timezone.now()
    lease = now + dt.timedelta(seconds=webhook_settings.stale_sending_after)
    if not states.claim(delivery_id, number, now, lease):
        return Outcome("skip")
    delivery = Delivery.objects.select_related("event", "subscription").get(pk=delivery_id)
    subscription = delivery.subscription
    if not subscription.is_active:
        states.mark_discarded(delivery_id, number, None, "Subscription is disabled.")
        return Outcome("done")

    body = build_body(delivery.event, subscription.payload_format)
    timestamp = int(now.timestamp())
    headers = build_headers(delivery, body, timestamp, now)
    release_pooled_connection()  # not held while waiting on the receiver
    result = send(
        subscription.url,
        body,
        headers,
        connect_timeout=float(webhook_settings.CONNECT_TIMEOUT),
        timeout=float(webhook_settings.TIMEOUT),
        max_body_bytes=int(webhook_settings.MAX_RESPONSE_BODY_BYTES),
    )
    logger.info(
        "attempt event=%s delivery=%s subscription=%s attempt=%d status=%s error=%s duration_ms=%d",
        delivery.event_id,
        delivery_id,
        subscription.pk,
        number,
        result.status,
        result.error_kind or "-",
        result.duration_ms,
    )
    return _record(delivery, number, now, headers, result, task_id)


def _record(
    delivery: Delivery,
    number: int,
    started: dt.datetime,
    headers: dict[str, str],
    result: SendResult,
    task_id: str,
) -> Outcome:
    subscription = delivery.subscription
    finished = timezone.now()
    with transaction.atomic():
        attempt = DeliveryAttempt.objects.create(
            delivery=delivery,
            number=number,
            started_at=started,
            duration_ms=result.duration_ms,
            request_headers=redact(headers),
            response_status=result.status,
            response_headers=result.headers,
            response_body=result.body,
            error_kind=result.error_kind,
            error=result.error[:500],
            task_id=task_id[:64],
        )
        if result.ok:
            won = states.mark_succeeded(delivery.pk, number, result.status or 0, finished)
            _note_success(subscription, finished)
            outcome = Outcome("done")
            signal = (signals.delivery_succeeded, {}) if won else None
        elif result.status == 410:
            reason = "Endpoint answered 410 Gone."
            states.mark_discarded(delivery.pk, number, 410, reason)
            disable_subscription(subscription, reason)
            return Outcome("done")
        else:
            outcome, signal = _after_failure(delivery, number, result, finished)
        if signal is not None:
            sig, extra = signal
            transaction.on_commit(
                lambda: sig.send(sender=Delivery, delivery=delivery, attempt=attempt, **extra)
            )
    return outcome


def _after_failure(
    delivery: Delivery, number: int, result: SendResult, now: dt.datetime
) -> tuple[Outcome, tuple | None]:
    _note_failure(delivery.subscription, now)
    error = result.error or f"HTTP {result.status}"
    delay = retry_delay(number) if is_retryable(result) else None
    if delay is not None and result.status in RETRY_AFTER_STATUSES:
        asked = parse_retry_after(result.headers.get("Retry-After"), now)
        if asked is not None:
            delay = max(delay, asked)
    if delay is None:
        won = states.mark_failed(delivery.pk, number, result.status, error)
        reason = "not retryable" if not is_retryable(result) else "retry schedule exhausted"
        return Outcome("done"), ((signals.delivery_failed, {"reason": reason}) if won else None)
    due = now + dt.timedelta(seconds=delay)
    if not states.mark_retrying(delivery.pk, number, due, result.status, error):
        return Outcome("done"), None
    if delay <= webhook_settings.max_countdown:
        return Outcome("retry", number + 1, delay), None
    return Outcome("park"), None


def _note_success(subscription: Subscription, now: dt.datetime) -> None:
    # Written at most about once a minute per endpoint, and at once after a failing run, so a
    # busy endpoint does not add an UPDATE to every delivery.
    last = subscription.last_success_at
    if subscription.failing_since is None and last and (now - last).total_seconds() < 60:
        return
    Subscription.objects.filter(pk=subscription.pk).update(failing_since=None, last_success_at=now)


def _note_failure(subscription: Subscription, now: dt.datetime) -> None:
    if subscription.failing_since is None:
        Subscription.objects.filter(pk=subscription.pk, failing_since__isnull=True).update(
            failing_since=now
        )
