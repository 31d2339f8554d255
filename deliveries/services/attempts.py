"""One delivery attempt: load, take an in-flight slot, claim, sign, send, record, decide what
comes next.

Three statements on PostgreSQL's common path: the load (delivery, event and subscription in one
SELECT, only if the delivery still waits for this attempt), the claim, and the attempt INSERT
with the guarded finishing UPDATE in one (`states.finish_with_attempt`); elsewhere the last is
two statements in a transaction. Plus two Redis commands for the in-flight cap (take and free
the slot).

Once the delivery is claimed, the attempt always ends the same way, whatever fails (building the
request, sending it, reading or storing the answer): one attempt row, with an honest error kind
(`internal` when the failure is ours, with the exception's type and message), and the delivery's
next state by the retry schedule (`_conclude`). Nothing a receiver answers can leave a delivery
`sending`; the sweep's release of a stale claim is for workers that died.

What comes next (`Outcome.action`):
- `done`: finished (succeeded, failed, discarded) or nothing left to do by this message;
- `retry`: the next attempt is due in `countdown` seconds, at most `max_countdown`: a Celery
  retry carries it;
- `park`: the wait is longer; the row's `next_attempt_at` holds it and the sweep sends it;
- `defer`: the endpoint is at its in-flight cap; try the same attempt again in `countdown`
  seconds (no attempt number consumed);
- `skip`: another message or the sweep owns this attempt (duplicate message).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import json
import logging
import random
import re
from dataclasses import dataclass
from typing import Literal

from django.db import IntegrityError, connection, transaction
from django.dispatch import Signal
from django.utils import timezone

from subscriptions.fields import decrypted_from_db
from subscriptions.headers import is_reserved_header
from subscriptions.matching import filters_match
from subscriptions.models import Subscription
from subscriptions.services import disable_subscription
from subscriptions.text import clean_text

from .. import signals
from ..conf import webhook_settings
from ..models import ERROR_MAX_CHARS, WAITING, Delivery, DeliveryAttempt, ErrorKind, Event
from ..payloads import build_body, content_type
from ..receiver_auth import send_authenticated
from ..signing import signature_header
from ..transport import SendResult
from . import inflight, notices, states
from .connections import reconnecting, release_pooled_connection

logger = logging.getLogger("deliveries.attempts")

# Answers worth trying again: the receiver may accept later. Every other 4xx is final.
RETRYABLE_STATUSES = frozenset({408, 409, 425, 429})
RETRY_AFTER_STATUSES = frozenset({429, 503})
# Failures worth trying again, answer or not: the network, the receiver's HTTP, or our own.
# A blocked or invalid destination will not become valid by waiting.
RETRYABLE_KINDS = frozenset(
    {ErrorKind.TIMEOUT, ErrorKind.CONNECTION, ErrorKind.PROTOCOL, ErrorKind.INTERNAL}
)
# A Retry-After beyond this is clamped: a receiver cannot park a delivery for a month.
MAX_RETRY_AFTER = 86400
# RFC 9110 §10.2.3: delay-seconds = 1*DIGIT, and DIGIT is ASCII 0-9 only (RFC 5234 B.1);
# `str.isdigit()` would also accept "²" or "٣", which `float()` refuses.
_DELAY_SECONDS = re.compile(r"[0-9]+")

# The headers the pipeline writes itself: their values are shown on the attempt row. Every
# other value (a subscription's custom headers, whatever their names) is stored masked.
OWN_HEADERS = frozenset(
    {"content-type", "user-agent", "webhook-id", "webhook-timestamp", "webhook-signature"}
)
MASKED = "[redacted]"

Action = Literal["done", "retry", "park", "defer", "skip"]


@dataclass(frozen=True)
class Outcome:
    action: Action
    next_attempt: int = 0
    countdown: float = 0.0
    deferrals: int = 0


def retry_delay(attempts_done: int, rng: random.Random | None = None) -> float | None:
    """Seconds before attempt `attempts_done + 1`, jitter included; None when none is left."""
    schedule = list(webhook_settings.RETRY_SCHEDULE)
    if attempts_done >= len(schedule):
        return None
    base = float(schedule[attempts_done])
    jitter = float(webhook_settings.RETRY_JITTER)
    return base + (rng or random).uniform(0, base * jitter) if base > 0 else 0.0


def parse_retry_after(value: str | None, now: dt.datetime) -> float | None:
    """Seconds from a Retry-After header, clamped to 0..MAX_RETRY_AFTER; None for no header or
    one that is neither delay-seconds (ASCII digits) nor an HTTP date (RFC 9110 §10.2.3).

    Never raises: the value is whatever the receiver sent.
    """
    if not value:
        return None
    value = value.strip()
    if _DELAY_SECONDS.fullmatch(value):
        seconds = float(value)  # not int(): no digit-count limit, a huge value is clamped
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
            if when.tzinfo is None:
                when = when.replace(tzinfo=dt.UTC)
            seconds = (when - now).total_seconds()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def header(headers: dict[str, str], name: str) -> str | None:
    """A response header by name, whatever its case (the stored dict keeps the sender's)."""
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), None)


def is_retryable(result: SendResult) -> bool:
    if result.error_kind in RETRYABLE_KINDS:
        return True
    return result.status is not None and (
        result.status >= 500 or result.status in RETRYABLE_STATUSES
    )


def build_headers(
    delivery: Delivery, body: bytes, timestamp: int, now: dt.datetime
) -> dict[str, str]:
    subscription = delivery.subscription
    msg_id = str(delivery.event_id)
    headers = {
        str(name): str(value)
        for name, value in (subscription.headers or {}).items()
        if not is_reserved_header(str(name))
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


def redact(headers: dict[str, str]) -> dict[str, str]:
    """The request headers as stored on the attempt row: our own (`OWN_HEADERS`) in clear, every
    other value masked, whatever its name (a custom `X-Auth` is as secret as `Authorization`)."""
    return {
        name: value if name.lower() in OWN_HEADERS else MASKED for name, value in headers.items()
    }


def not_sendable(delivery: Delivery) -> str | None:
    """Why the delivery must be discarded instead of sent now, or None.

    Its subscription was disabled, or no longer selects the event's type (its filters changed
    while the delivery waited): discarded as those of a disabled subscription are. A test
    event goes to its subscription whatever the filters.
    """
    subscription = delivery.subscription
    if not subscription.is_active:
        return "Subscription is disabled."
    event = delivery.event
    if event.target_subscription_id is None and not filters_match(
        subscription.event_types or (), event.type
    ):
        return states.unselected_reason(event.type)
    return None


def attempt_delivery(
    delivery_id: int, number: int, task_id: str = "", deferrals: int = 0
) -> Outcome:
    """Run attempt `number` of a delivery, at most once whatever the number of messages.

    `deferrals` counts how often this attempt already found its endpoint at its in-flight cap.
    """
    now = timezone.now()
    delivery = reconnecting(_load, delivery_id, number)
    if delivery is None:
        return Outcome("skip")  # finished, or this attempt is another message's
    subscription = delivery.subscription
    refusal = not_sendable(delivery)
    if refusal is not None:
        if states.claim(delivery_id, number, now, now):
            states.mark_discarded(delivery_id, number, None, refusal)
        return Outcome("done")
    slot = inflight.acquire(subscription)
    if slot is None:
        return _defer(delivery, number, deferrals, now)
    try:
        lease = now + dt.timedelta(seconds=webhook_settings.stale_sending_after)
        if not states.claim(delivery_id, number, now, lease):
            return Outcome("skip")
        headers, result = _send(delivery, now)
    finally:
        slot.release()
    logger.info(
        "attempt event=%s delivery=%s subscription=%s attempt=%d status=%s error=%s duration_ms=%d",
        delivery.event_id,
        delivery_id,
        subscription.pk,
        number,
        result.status,
        result.error_kind or "-",
        result.duration_ms,
        # The same fields as record attributes, for JSON log formatters. Never the body, the
        # headers or the URL (it may carry credentials): ids, status and timing only.
        extra={
            "event_id": str(delivery.event_id),
            "delivery_id": delivery_id,
            "subscription_id": str(subscription.pk),
            "attempt": number,
            "status_code": result.status,
            "error_kind": result.error_kind or "",
            "duration_ms": result.duration_ms,
        },
    )
    return _conclude(_Claimed(delivery, number, now, headers, task_id), result)


def _send(delivery: Delivery, now: dt.datetime) -> tuple[dict[str, str], SendResult]:
    """Build, sign and send the request of a claimed attempt: the headers sent and the result.

    Never raises: a failure of ours before or during sending becomes an `internal` result.
    """
    subscription = delivery.subscription
    headers: dict[str, str] = {}
    try:
        body = build_body(delivery.event, subscription.payload_format, delivery.version)
        headers = build_headers(delivery, body, int(now.timestamp()), now)
        release_pooled_connection()  # not held while waiting on the receiver
        return headers, send_authenticated(
            subscription,
            body,
            headers,
            connect_timeout=float(webhook_settings.CONNECT_TIMEOUT),
            timeout=float(webhook_settings.TIMEOUT),
            max_body_bytes=int(webhook_settings.MAX_RESPONSE_BODY_BYTES),
        )
    except Exception as exc:
        logger.exception("delivery %s: the request could not be built or sent", delivery.pk)
        return headers, internal_result(exc)


def internal_result(exc: BaseException, answered: SendResult | None = None) -> SendResult:
    """The result of an attempt that failed on our side: the exception's type and message as
    its error; the receiver's status and duration kept when it had answered (`answered`)."""
    return SendResult(
        status=answered.status if answered else None,
        duration_ms=answered.duration_ms if answered else 0,
        error_kind=ErrorKind.INTERNAL,
        error=clean_text(f"{type(exc).__name__}: {exc}")[:ERROR_MAX_CHARS],
    )


def _load(delivery_id: int, number: int) -> Delivery | None:
    """The delivery with its event and subscription (one joined SELECT), only if it still waits
    for attempt `number`. On PostgreSQL, `_LOAD`; elsewhere the ORM's `select_related`."""
    if connection.vendor == "postgresql":
        return _load_literal(delivery_id, number)
    try:
        return Delivery.objects.select_related("event", "subscription").get(
            pk=delivery_id, status__in=WAITING, attempts=number - 1
        )
    except Delivery.DoesNotExist:
        return None


# The columns an attempt reads, by model, in the models' field order (`Model.from_db` takes the
# values in that order): the instances are built with exactly these loaded; any other field is
# deferred and loaded on first access, so a field added to a model later is read correctly, if
# with one more query.
_LOADED = {
    Delivery: (
        "id",
        "event_id",
        "subscription_id",
        "status",
        "attempts",
        "next_attempt_at",
        "version",  # the body's version (payloads.build_body)
    ),
    Event: ("id", "type", "data", "target_subscription_id", "version", "renditions", "created_at"),
    Subscription: (
        "id",
        "tenant_id",  # the tenant's in-flight cap (inflight.acquire)
        "url",
        "event_types",
        "is_active",
        "payload_format",
        "headers",
        "rate_limit",
        "secret",
        "previous_secret",
        "previous_secret_expires_at",
        "signature_scheme",
        "signing_key",
        "previous_signing_key",
        "oauth2_token_url",
        "oauth2_client_id",
        "oauth2_client_secret",
        "oauth2_scope",
        "tls_client_cert",
        "tls_client_key",
        "failing_since",
        "last_success_at",
    ),
}
# Every attempt's first statement, on PostgreSQL. The ORM spends about 1 ms of CPU compiling the
# select_related() query for each delivery, more than the database spends answering it: in a
# worker that is CPU-bound that is a third of a delivery (docs/performance.md). The guard is the
# one `states.claim` applies. tests/test_states.py checks that it loads what the ORM loads.
_LOAD = """
SELECT d.id, d.event_id, d.subscription_id, d.status, d.attempts, d.next_attempt_at, d.version,
       e.id, e.type, e.data, e.target_subscription_id, e.version, e.renditions, e.created_at,
       s.id, s.tenant_id, s.url, s.event_types, s.is_active, s.payload_format, s.headers,
       s.rate_limit, s.secret, s.previous_secret, s.previous_secret_expires_at,
       s.signature_scheme, s.signing_key, s.previous_signing_key, s.oauth2_token_url,
       s.oauth2_client_id, s.oauth2_client_secret, s.oauth2_scope, s.tls_client_cert,
       s.tls_client_key, s.failing_since, s.last_success_at
FROM webhooks_delivery d
JOIN webhooks_event e ON e.id = d.event_id
JOIN webhooks_subscription s ON s.id = d.subscription_id
WHERE d.id = %s AND d.status IN (%s, %s) AND d.attempts = %s
"""


def _load_literal(delivery_id: int, number: int) -> Delivery | None:
    with connection.cursor() as cursor:
        cursor.execute(_LOAD, [delivery_id, *WAITING, number - 1])
        row = cursor.fetchone()
    if row is None:
        return None
    values = iter(row)
    delivery, event, subscription = (
        model.from_db(connection.alias, names, [next(values) for _ in names])
        for model, names in _LOADED.items()
    )
    # JSON arrives as text from a raw cursor (Django decodes it in the field's from_db_value).
    event.data = json.loads(event.data)
    event.renditions = json.loads(event.renditions)
    subscription.event_types = json.loads(subscription.event_types)
    # Encrypted columns (headers, secrets, keys) arrive as stored: decrypted by their fields.
    decrypted_from_db(subscription, connection)
    delivery.event, delivery.subscription = event, subscription
    return delivery


def defer_delay(deferrals: int, rng: random.Random | None = None) -> float:
    """Seconds before a delivery refused `deferrals` times by the cap tries again."""
    base = float(webhook_settings.IN_FLIGHT_RETRY_DELAY) * 2 ** min(deferrals, 20)
    # Wide jitter: a burst refused together must not come back together.
    return base * (1 + (rng or random).uniform(0, 1))


def _defer(delivery: Delivery, number: int, deferrals: int, now: dt.datetime) -> Outcome:
    """The endpoint is at its cap: give the worker slot back and come back later, as the same
    attempt. Short waits ride a Celery countdown; once the backoff reaches `max_countdown` the
    delivery is parked in the database like any long wait."""
    delay = defer_delay(deferrals)
    parked = delay >= webhook_settings.max_countdown
    if parked:
        delay = webhook_settings.max_countdown
    back_at = now + dt.timedelta(seconds=delay)
    # The row's due time only has to move if the sweep would otherwise take the delivery for
    # lost before this message is back; skipping the write spares the database in a burst.
    grace = dt.timedelta(seconds=float(webhook_settings.SWEEP_GRACE))
    due = delivery.next_attempt_at
    sweep_safe = due is not None and due + grace > back_at + dt.timedelta(seconds=1)
    if (parked or not sweep_safe) and not states.defer(delivery.pk, number, back_at):
        return Outcome("skip")
    if parked:
        return Outcome("park")
    return Outcome("defer", number, delay, deferrals + 1)


@dataclass(frozen=True)
class _Ending:
    """How an attempt's outcome ends it: the delivery's changes and what comes next."""

    changes: dict
    outcome: Outcome
    signal: tuple[Signal, dict] | None = None  # sent if this attempt still owned the delivery
    disable_reason: str = ""  # the receiver asked us to stop (410)


@dataclass(frozen=True)
class _Claimed:
    """An attempt this worker claimed and ran: what its row records besides the result."""

    delivery: Delivery
    number: int
    started: dt.datetime
    headers: dict[str, str]  # as sent
    task_id: str


def _conclude(claimed: _Claimed, result: SendResult) -> Outcome:
    """End a claimed attempt: store its row and the delivery's next state, then say what comes
    next. The one place the attempt invariant is kept (see the module docstring).

    If deciding or storing fails (a bug, a value the database refuses), the attempt is stored
    again as `internal`, without the receiver's headers and body, keeping its status: a 2xx
    still ends the delivery as succeeded, anything else follows the retry schedule. Only a
    database that refuses that too leaves the claim to the sweep.
    """
    delivery = claimed.delivery
    try:
        stored = _store(claimed, result)
    except Exception as exc:
        logger.exception(
            "attempt %d of delivery %s: its answer could not be recorded; recording an internal "
            "error instead",
            claimed.number,
            delivery.pk,
        )
        result = internal_result(exc, answered=result)
        stored = _store(claimed, result)
    if stored is None:
        return Outcome("skip")
    attempt, won, ending = stored
    try:
        finished = timezone.now()
        if _accepted(result):
            _note_success(delivery.subscription, finished)
        elif not ending.disable_reason:
            _note_failure(delivery.subscription, finished)
    except Exception:  # endpoint health is bookkeeping: the delivery's state is already right
        logger.exception("subscription %s: health not updated", delivery.subscription_id)
    if not won:
        return Outcome("done")
    if ending.signal is not None:
        sig, extra = ending.signal
        transaction.on_commit(lambda: _announce(sig, delivery, attempt, extra))
    return ending.outcome


def _store(claimed: _Claimed, result: SendResult) -> tuple[DeliveryAttempt, bool, _Ending] | None:
    """Insert the attempt row and apply the delivery's next state, both or neither. Returns the
    row, whether the delivery was still this attempt's, and the ending; None when the sweep had
    already recorded this attempt as interrupted."""
    delivery, number = claimed.delivery, claimed.number
    ending = _ending(number, result, timezone.now())
    attempt = DeliveryAttempt(
        delivery=delivery,
        number=number,
        started_at=claimed.started,
        duration_ms=result.duration_ms,
        request_headers=redact(claimed.headers),
        response_status=result.status,
        response_headers=result.headers,
        response_body=result.body,
        error_kind=result.error_kind,
        error=result.error[:ERROR_MAX_CHARS],
        task_id=claimed.task_id[:64],
    )
    try:
        # The attempt row and the delivery's new state in one statement on PostgreSQL (no
        # BEGIN/COMMIT round trips); the common path needs no other write.
        with transaction.atomic() if ending.disable_reason else contextlib.nullcontext():
            attempt, won = reconnecting(states.finish_with_attempt, attempt, number, ending.changes)
            if ending.disable_reason:
                disable_subscription(delivery.subscription, ending.disable_reason)
    except IntegrityError:
        if not DeliveryAttempt.objects.filter(delivery_id=delivery.pk, number=number).exists():
            raise  # not the sweep's row: some other refusal, recorded as ours by _conclude
        # The sweep took this attempt for lost (it outlived STALE_SENDING_AFTER) and recorded
        # it as interrupted; the attempt it enqueued instead owns the delivery now.
        logger.warning(
            "attempt %d of delivery %s finished after it was released as stale", number, delivery.pk
        )
        return None
    return attempt, won, ending


def _announce(signal: Signal, delivery: Delivery, attempt: DeliveryAttempt, extra: dict) -> None:
    if signal.has_listeners(Delivery):
        # The instance was loaded before the claim: give listeners the row as it ended.
        delivery.refresh_from_db()
        signal.send(sender=Delivery, delivery=delivery, attempt=attempt, **extra)


def _accepted(result: SendResult) -> bool:
    """The receiver accepted the webhook: a 2xx answer, even if we then failed to store it."""
    return result.ok or (
        result.error_kind == ErrorKind.INTERNAL
        and result.status is not None
        and 200 <= result.status < 300
    )


def _ending(number: int, result: SendResult, now: dt.datetime) -> _Ending:
    if _accepted(result):
        return _Ending(
            states.succeeded(result.status or 0, now),
            Outcome("done"),
            (signals.delivery_succeeded, {}),
        )
    if result.status == 410:
        reason = "Endpoint answered 410 Gone."
        return _Ending(states.discarded(410, reason), Outcome("done"), disable_reason=reason)
    error = result.error or f"HTTP {result.status}"
    retryable = is_retryable(result)
    delay = retry_delay(number) if retryable else None
    if delay is not None and result.status in RETRY_AFTER_STATUSES:
        asked = parse_retry_after(header(result.headers, "Retry-After"), now)
        if asked is not None:
            delay = max(delay, asked)
    if delay is None:
        reason = "retry schedule exhausted" if retryable else "not retryable"
        return _Ending(
            states.failed(result.status, error),
            Outcome("done"),
            (signals.delivery_failed, {"reason": reason}),
        )
    due = now + dt.timedelta(seconds=delay)
    changes = states.retrying(due, result.status, error)
    if delay <= webhook_settings.max_countdown:
        return _Ending(changes, Outcome("retry", number + 1, delay))
    return _Ending(changes, Outcome("park"))


def _note_success(subscription: Subscription, now: dt.datetime) -> None:
    # Written at most about once a minute per endpoint, and at once after a failing run, so a
    # busy endpoint does not add an UPDATE to every delivery.
    started = subscription.failing_since
    last = subscription.last_success_at
    if started is None:
        if last and (now - last).total_seconds() < 60:
            return
        endpoint = Subscription.objects.filter(pk=subscription.pk)
        if endpoint.filter(failing_since__isnull=True).update(last_success_at=now):
            return
        # A failing run began after this subscription was loaded: this success ends it.
        started = endpoint.values_list("failing_since", flat=True).first()
        if started is None:
            return
    # Guarded on the run's start, so that of concurrent successes exactly one ends the
    # incident and makes its notice.
    if Subscription.objects.filter(pk=subscription.pk, failing_since=started).update(
        failing_since=None, last_success_at=now
    ):
        notices.endpoint_recovered(subscription, started)


def _note_failure(subscription: Subscription, now: dt.datetime) -> None:
    # The worker whose UPDATE starts the failing run makes the incident's one notice.
    if subscription.failing_since is None and Subscription.objects.filter(
        pk=subscription.pk, failing_since__isnull=True
    ).update(failing_since=now):
        notices.endpoint_failing(subscription, now)
