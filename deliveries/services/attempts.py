"""One delivery attempt: claim and load, take an in-flight slot, sign, send, record, decide
what comes next.

Two statements on PostgreSQL's common path, the same on SQLite (where the second is three in
a transaction): `states.claim` (the guarded UPDATE that takes the delivery for this attempt and
returns it with its event and subscription) and `states.record` (the attempt row, the
delivery's next state and, for a success, the endpoint's last success). Plus one Redis round
trip to take the in-flight slot and one, as soon as the answer is in, to free it with the
tenant's fair-share place when no retry message follows (`fairness.settle`).
A claim that sends nothing (the endpoint is at its cap, or no longer takes the event) is given
back by `states.release`, with its attempt number: no attempt number without an attempt row.

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

import datetime as dt
import email.utils
import logging
import random
import re
from dataclasses import dataclass
from typing import Literal

from django.db import IntegrityError, transaction
from django.dispatch import Signal
from django.utils import timezone

from subscriptions.headers import is_reserved_header
from subscriptions.matching import filters_match
from subscriptions.models import Subscription
from subscriptions.services import DELETED_REASON, disable_subscription
from webhooks_core.text import clean_text

from .. import signals, tracing
from ..conf import webhook_settings
from ..models import (
    ERROR_MAX_CHARS,
    FINISHED,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    ErrorKind,
)
from ..payloads import build_body, content_type
from ..receiver_auth import send_authenticated
from ..signing import signature_header
from ..transport import SendResult
from . import clock, fairness, inflight, notices, ordering, rate, states
from .connections import reconnecting, release_pooled_connection, working_alias

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
    {
        "content-type",
        "user-agent",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        tracing.TRACEPARENT,
    }
)
MASKED = "[redacted]"

Action = Literal["done", "retry", "park", "defer", "skip"]


@dataclass(frozen=True)
class Outcome:
    action: Action
    next_attempt: int = 0
    countdown: float = 0.0
    deferrals: int = 0
    # With `defer`: what the next try needs to ask the cap before touching the database
    # (`CapTicket.as_message()`), carried in the retry message.
    cap: dict | None = None


@dataclass(frozen=True)
class CapTicket:
    """What a deferred attempt carries to its next try: the subscription's cap inputs (its id,
    tenant and own limit) and the row's due time as the deferral wrote it (Unix seconds, on the
    database's clock), so that a try still refused by the cap sends nothing to the database."""

    subscription_id: str
    tenant_id: str
    rate_limit: int | None
    due: float
    # The endpoint's own `max_rate` (None: its tenant's or the default applies), and when this
    # attempt was first held back (Unix seconds, the database's clock): its wait is recorded
    # on the attempt row (`DeliveryAttempt.throttled_ms`).
    max_rate: float | None = None
    since: float | None = None

    def as_message(self) -> dict:
        return {
            "subscription_id": self.subscription_id,
            "tenant_id": self.tenant_id,
            "rate_limit": self.rate_limit,
            "due": self.due,
            "max_rate": self.max_rate,
            "since": self.since,
        }

    @classmethod
    def from_message(cls, value: object) -> CapTicket | None:
        """The ticket in a retry message, or None for a message without one (or a malformed
        one: the attempt then takes the ordinary path)."""
        if not isinstance(value, dict):
            return None
        try:
            limit = value.get("rate_limit")
            per_second = value.get("max_rate")
            since = value.get("since")
            return cls(
                str(value["subscription_id"]),
                str(value["tenant_id"]),
                int(limit) if limit else None,
                float(value["due"]),
                float(per_second) if per_second else None,
                float(since) if since else None,
            )
        except (KeyError, TypeError, ValueError):
            return None

    def subscription(self) -> Subscription:
        """An unsaved stand-in with the fields `inflight.acquire` reads."""
        return Subscription(
            pk=self.subscription_id,
            tenant_id=self.tenant_id,
            max_in_flight=self.rate_limit,
            max_rate=self.max_rate,
        )


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
        # The claim loads every column of the subscription, `deleted_at` too: no query.
        if subscription.deleted_at is not None:
            return states.disabled_reason(DELETED_REASON)
        return "Subscription is disabled."
    event = delivery.event
    if event.target_subscription_id is None and not filters_match(
        subscription.event_types or (), event.type
    ):
        return states.unselected_reason(event.type)
    return None


def attempt_delivery(
    delivery_id: int,
    number: int,
    task_id: str = "",
    deferrals: int = 0,
    cap: dict | None = None,
    tenant: str | None = None,
) -> Outcome:
    """Run attempt `number` of a delivery, at most once whatever the number of messages.

    `deferrals` counts how often this attempt already found its endpoint at its in-flight cap;
    `cap` is the `CapTicket` the last deferral handed on (`Outcome.cap`): with it the cap is
    asked first, and a try still refused costs no statement at all. `tenant` is set when the
    message is counted in its tenant's fair share: unless another message carries on (a
    retry, a deferral), its place is freed here (`fairness.settle`).
    """
    outcome: Outcome | None = None
    held = _Held(delivery_id, tenant)
    try:
        outcome = _attempt(delivery_id, number, task_id, deferrals, cap, held)
        return outcome
    finally:
        # Whatever the attempt has not freed yet: its slot (it did not send), or the tenant's
        # place if the chain ended other than the answer foretold (`_Held.free`).
        held.free(ends=outcome is None or outcome.action not in ("retry", "defer"))


@dataclass
class _Held:
    """What an attempt holds in the counters' Redis: its in-flight slot, and, when `tenant` is
    set, its message's place in the tenant's fair share (`fairness`)."""

    delivery_id: int
    tenant: str | None
    slot: inflight.Slot | None = None
    settled: bool = False  # the tenant's place is freed

    def free(self, ends: bool) -> None:
        """Free the slot, and the tenant's place if the message chain ends here (no retry or
        deferral message follows), in one round trip (`fairness.settle`). Idempotent."""
        settle = self.tenant if ends and not self.settled else None
        if self.slot is None and settle is None:
            return
        slot, self.slot = self.slot, None
        self.settled = self.settled or settle is not None
        fairness.settle(settle, self.delivery_id, slot)


def _attempt(
    delivery_id: int, number: int, task_id: str, deferrals: int, cap: dict | None, held: _Held
) -> Outcome:
    clock.check()  # a measurement every few minutes, nothing in between
    ticket = CapTicket.from_message(cap)
    since = ticket.since if ticket is not None else None
    if ticket is not None:
        taken = inflight.take(ticket.subscription())
        if isinstance(taken, inflight.Refusal):
            again = _defer_again(ticket, number, deferrals, taken)
            if again is not None:
                return again
        else:
            held.slot = taken
    delivery = reconnecting(states.claim, delivery_id, number)
    if delivery is None:
        return Outcome("skip")  # finished, or this attempt is another message's
    subscription = delivery.subscription
    refusal = not_sendable(delivery)
    if refusal is not None:
        if states.release(delivery_id, number, discard_reason=refusal):
            ordering.ended(delivery)
        return Outcome("done")
    if held.slot is None:
        taken = inflight.take(subscription)
        if isinstance(taken, inflight.Refusal):
            return _defer(delivery, number, deferrals, taken, since)
        held.slot = taken
    throttled = _throttled_ms(since)
    span = tracing.start_attempt(delivery, number)
    headers, result = _send(delivery, timezone.now(), span)
    # The slot goes back as soon as the answer is in, not after the record: an endpoint's or a
    # tenant's cap counts requests in flight, and holding it longer made other deliveries wait
    # (a fifth of the bench's deliveries instead of a twentieth). The answer foretells whether a
    # retry message follows; `attempt_delivery` settles the tenant's place if it turns out
    # otherwise (the sweep took the attempt, or recording it failed).
    foretold = _foretell(number, result)
    held.free(ends=foretold is not None and foretold.outcome.action != "retry")
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
    outcome = _conclude(_Claimed(delivery, number, headers, task_id, throttled), result, foretold)
    return tracing.end_attempt(span, result, outcome)


def _foretell(number: int, result: SendResult) -> _Ending | None:
    """How attempt `number`, answered `result`, ends (`_ending`), decided once as soon as the
    answer is in: it says whether a retry message follows, and `_conclude` records it. None if
    deciding failed (`_conclude` then decides again, and records an internal error if that
    fails too)."""
    try:
        return _ending(number, result, clock.now())
    except Exception:
        logger.exception("attempt %d: its ending could not be decided", number)
        return None


def _throttled_ms(since: float | None) -> int:
    """Milliseconds since this attempt was first held back by a rate or a cap (0: never)."""
    if since is None:
        return 0
    return max(0, int((clock.now().timestamp() - since) * 1000))


def _send(
    delivery: Delivery, now: dt.datetime, span: object = None
) -> tuple[dict[str, str], SendResult]:
    """Build, sign and send the request of a claimed attempt: the headers sent and the result.
    `now` is this worker's clock: it is the `webhook-timestamp` and picks the signing secrets.
    `span` is the attempt's trace span, if any (its `traceparent` may go with the request).

    Never raises: a failure of ours before or during sending becomes an `internal` result.
    """
    subscription = delivery.subscription
    headers: dict[str, str] = {}
    try:
        body = build_body(delivery.event, subscription.payload_format, delivery.version)
        headers = build_headers(delivery, body, int(now.timestamp()), now)
        tracing.add_traceparent(headers, span)
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


# The refusal (counted from 0) at which a delivery's wait reason is written, if nothing else
# wrote it before: after about 3 to 6 s of waiting with the default IN_FLIGHT_RETRY_DELAY.
SHOW_WAIT_AFTER = 2


def defer_delay(deferrals: int, rng: random.Random | None = None) -> float:
    """Seconds before a delivery refused `deferrals` times by the cap tries again."""
    base = float(webhook_settings.IN_FLIGHT_RETRY_DELAY) * 2 ** min(deferrals, 20)
    # Wide jitter: a burst refused together must not come back together.
    return base * (1 + (rng or random).uniform(0, 1))


def wait_delay(refusal: inflight.Refusal, deferrals: int) -> float:
    """Seconds before a refused delivery tries again: its turn, as the rate (or the 429 pause)
    said, a little after so as not to come back a millisecond early; else the cap's backoff."""
    if refusal.wait > 0:
        return refusal.wait + 0.005 + refusal.wait * 0.01
    return defer_delay(deferrals)


def _defer_again(
    ticket: CapTicket, number: int, deferrals: int, refusal: inflight.Refusal
) -> Outcome | None:
    """A deferred attempt still refused by the cap: come back later without touching the
    database, if the row's due time (as the last deferral wrote it) keeps the sweep away until
    this message is back; None when the row must move (or the wait is long enough to park it):
    the ordinary path then claims and gives the claim back with the new time."""
    if deferrals == SHOW_WAIT_AFTER:
        return None  # a wait that lasts: the ordinary path writes why (`_defer`)
    delay = wait_delay(refusal, deferrals)
    if delay >= webhook_settings.max_countdown:
        return None
    back_at = clock.now().timestamp() + delay
    grace = float(webhook_settings.SWEEP_GRACE)
    if ticket.due + grace <= back_at + 1:
        return None
    return Outcome("defer", number, delay, deferrals + 1, ticket.as_message())


def _defer(
    delivery: Delivery,
    number: int,
    deferrals: int,
    refusal: inflight.Refusal,
    since: float | None = None,
) -> Outcome:
    """The endpoint is at its cap: give the claim and the worker slot back and come back later,
    as the same attempt (its number is not consumed). Short waits ride a Celery countdown;
    once the backoff reaches `max_countdown` the delivery is parked in the database like any
    long wait. The row is due when the message comes back, so the sweep does not take it for
    lost before then (it waits SWEEP_GRACE past the due time)."""
    delay = wait_delay(refusal, deferrals)
    parked = delay >= webhook_settings.max_countdown
    if parked and not refusal.wait:
        delay = webhook_settings.max_countdown
    # The row is due well after the message is back (four backoffs ahead, within what the sweep
    # would wait anyway), so the tries that follow need not move it again (`_defer_again`).
    # A parked rate wait is due at its turn.
    now = clock.now()
    until = now + dt.timedelta(seconds=delay if parked else delay * 4)
    # A wait that outlasts a few refusals is written with the cap that refused: the API, the
    # admin, the portal and the backlog figures show why the delivery waits
    # (Delivery.waiting_for). Not the first refusals: a burst refused for a second or two shows
    # nothing, and asking Redis which cap refused costs a round trip or two.
    shown = parked or deferrals >= SHOW_WAIT_AFTER
    reason = ""
    if shown:
        reason = (
            refusal.reason
            if refusal.reason != "cap"
            else inflight.refusal_reason(delivery.subscription)
        )
    if not states.release(delivery.pk, number, until=until, wait_reason=reason):
        return Outcome("skip")
    if parked:
        return Outcome("park")
    subscription = delivery.subscription
    ticket = CapTicket(
        str(subscription.pk),
        str(subscription.tenant_id),
        subscription.max_in_flight,
        until.timestamp(),
        subscription.max_rate,
        since if since is not None else now.timestamp(),
    )
    return Outcome("defer", number, delay, deferrals + 1, ticket.as_message())


@dataclass(frozen=True)
class _Ending:
    """How an attempt's outcome ends it: the delivery's changes and what comes next."""

    ending: states.Ending
    outcome: Outcome
    signal: tuple[Signal, dict] | None = None  # sent if this attempt still owned the delivery
    disable_reason: str = ""  # the receiver asked us to stop (410)


@dataclass(frozen=True)
class _Claimed:
    """An attempt this worker claimed and ran: what its row records besides the result."""

    delivery: Delivery  # as claimed: its `claimed_at` (the database's clock) starts the attempt
    number: int
    headers: dict[str, str]  # as sent
    task_id: str
    throttled_ms: int = 0  # waited on a rate or a cap before it was sent

    @property
    def started_at(self) -> dt.datetime:
        """When the attempt started: the claim's time (the database's clock), which the claim
        always sets."""
        started = self.delivery.claimed_at
        if started is None:
            raise ValueError(f"delivery {self.delivery.pk} was not claimed")
        return started


def _conclude(claimed: _Claimed, result: SendResult, ending: _Ending | None = None) -> Outcome:
    """End a claimed attempt: store its row and the delivery's next state (`ending`, as
    `_foretell` decided it; decided here when None), then say what comes next. The one place
    the attempt invariant is kept (see the module docstring).

    If deciding or storing fails (a bug, a value the database refuses), the attempt is stored
    again as `internal`, without the receiver's headers and body, keeping its status: a 2xx
    still ends the delivery as succeeded, anything else follows the retry schedule. Only a
    database that refuses that too leaves the claim to the sweep.
    """
    delivery = claimed.delivery
    try:
        stored = _store(claimed, result, ending)
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
    (attempt, won, failing_since), ending = stored
    if result.status == 429:
        _share_retry_after(delivery.subscription_id, result)
    try:
        if _accepted(result):
            if failing_since is not None:
                _end_failing_run(delivery.subscription, failing_since, clock.now(), result.status)
        elif not ending.disable_reason:
            _note_failure(delivery.subscription, clock.now())
    except Exception:  # endpoint health is bookkeeping: the delivery's state is already right
        logger.exception("subscription %s: health not updated", delivery.subscription_id)
    if not won:
        return Outcome("done")
    if delivery.ordering_key is not None and ending.ending.status in FINISHED:
        # Right after the commit that ended it: the next delivery of its key goes now.
        ordering.ended(delivery)
    if ending.signal is not None:
        sig, extra = ending.signal
        transaction.on_commit(lambda: _announce(sig, delivery, attempt, extra))
    return ending.outcome


def _store(
    claimed: _Claimed, result: SendResult, ending: _Ending | None = None
) -> tuple[states.Recorded, _Ending] | None:
    """Insert the attempt row and apply the delivery's next state (`ending`, decided here when
    None), both or neither; a success notes the endpoint's last success in the same statement
    (`states.record`). Returns what was recorded and the ending; None when the sweep had
    already recorded this attempt as interrupted."""
    delivery, number = claimed.delivery, claimed.number
    now = clock.now()
    if ending is None:
        ending = _ending(number, result, now)
    success_at = now if _accepted(result) else None
    attempt = DeliveryAttempt(
        delivery=delivery,
        number=number,
        started_at=claimed.started_at,
        duration_ms=result.duration_ms,
        request_headers=redact(claimed.headers),
        response_status=result.status,
        response_headers=result.headers,
        response_body=result.body,
        error_kind=result.error_kind,
        error=result.error[:ERROR_MAX_CHARS],
        task_id=claimed.task_id[:64],
        throttled_ms=claimed.throttled_ms,
    )
    alias = working_alias()
    try:
        # The attempt row and the delivery's new state in one statement on PostgreSQL (no
        # BEGIN/COMMIT round trips); the common path needs no other write.
        if ending.disable_reason:
            with transaction.atomic(using=alias):
                recorded = states.record(attempt, ending.ending)
                disable_subscription(delivery.subscription, ending.disable_reason)
        else:
            recorded = reconnecting(states.record, attempt, ending.ending, success_at=success_at)
    except IntegrityError:
        rows = DeliveryAttempt.objects.using(alias)
        if not rows.filter(delivery_id=delivery.pk, number=number).exists():
            raise  # not the sweep's row: some other refusal, recorded as ours by _conclude
        # The sweep took this attempt for lost (its claim outlived the lease) and recorded it
        # as interrupted; the attempt it enqueued instead owns the delivery now.
        logger.warning(
            "attempt %d of delivery %s finished after it was released as stale", number, delivery.pk
        )
        return None
    return recorded, ending


def _share_retry_after(subscription_id: object, result: SendResult) -> None:
    """A 429 with Retry-After pauses the whole endpoint for that period, for every worker
    (`rate.hold_for`), not only this delivery: the receiver said it is over its own limit."""
    seconds = parse_retry_after(header(result.headers, "Retry-After"), clock.now())
    if seconds:
        rate.hold_for(subscription_id, seconds)


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
            states.Ending(DeliveryStatus.SUCCEEDED, result.status or 0),
            Outcome("done"),
            (signals.delivery_succeeded, {}),
        )
    if result.status == 410:
        reason = "Endpoint answered 410 Gone."
        return _Ending(
            states.Ending(DeliveryStatus.DISCARDED, 410, reason),
            Outcome("done"),
            disable_reason=reason,
        )
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
            states.Ending(DeliveryStatus.FAILED, result.status, error),
            Outcome("done"),
            (signals.delivery_failed, {"reason": reason}),
        )
    due = now + dt.timedelta(seconds=delay)
    ending = states.Ending(DeliveryStatus.RETRYING, result.status, error, due)
    if delay <= webhook_settings.max_countdown:
        return _Ending(ending, Outcome("retry", number + 1, delay))
    return _Ending(ending, Outcome("park"))


def _end_failing_run(
    subscription: Subscription, started: dt.datetime, now: dt.datetime, status: int | None
) -> None:
    """A success on an endpoint whose failing run began at `started` ends that run. Guarded on
    the run's start, so that of concurrent successes exactly one ends the incident and makes
    its notice. (The common case, a success on a healthy endpoint, is noted by the attempt's
    own record statement: `states.record`.)"""
    if (
        Subscription.objects.using(working_alias())
        .filter(pk=subscription.pk, failing_since=started)
        .update(failing_since=None, last_success_at=now)
    ):
        notices.endpoint_recovered(subscription, started, status)


def _note_failure(subscription: Subscription, now: dt.datetime) -> None:
    # The worker whose UPDATE starts the failing run makes the incident's one notice.
    if subscription.failing_since is None and Subscription.objects.using(working_alias()).filter(
        pk=subscription.pk, failing_since__isnull=True
    ).update(failing_since=now):
        notices.endpoint_failing(subscription, now)
