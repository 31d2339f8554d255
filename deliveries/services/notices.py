"""Operational notices: one per incident, not one per failed attempt.

An incident of an endpoint (a subscription) starts with the first failed attempt of a failing
run (`failing_since` goes from empty to set) and ends with the next success (`recovered`), or
goes on until the endpoint is disabled (`disabled`, by `DISABLE_AFTER`, a 410, or a person).
Enabling it again starts afresh. Each transition makes at most one `EndpointNotice`:

- `failing`: made by the attempt that set `failing_since` (a guarded UPDATE only one worker
  wins: `attempts._note_failure`), with `disable_at` = `failing_since` + `DISABLE_AFTER`;
- `recovered`: made by the attempt that cleared it (`attempts._end_failing_run`, guarded the same
  way);
- `disabled`: made after commit by the `subscription_disabled` receiver, whoever disabled it.

The unique constraint (subscription, kind, incident start) backs the guards: a second notice for
the same incident is refused by the database and ignored here. Each notice carries what the
endpoint missed since the incident began (count, and the creation time of the oldest, from which
a replay covers them) and the statuses such a replay should select.

After commit the notice is sent as the `deliveries.signals.endpoint_notice` signal, and, when
`NOTICE_EMAIL` or `NOTICE_WEBHOOK_URL` is set, a task on the maintenance queue announces it
(`announce`): an email to the endpoint's contact and a POST to the operator URL, at most once.
Nothing here ever makes an attempt fail: a notice that cannot be written is logged.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import uuid
from dataclasses import dataclass
from typing import cast

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Count, Min
from django.utils import timezone

from subscriptions.models import Subscription
from webhooks_core.tenancy import user_belongs_to

from .. import dispatch, signals
from ..conf import webhook_settings
from ..models import (
    ERROR_MAX_CHARS,
    WAITING,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    EndpointNotice,
    NoticeKind,
)
from ..payloads import dumps, isoformat
from ..signing import signature_header
from ..summaries import summarize
from ..transport import send
from .incidents import INCIDENT_MARGIN, REPLAY_STATUSES

logger = logging.getLogger("deliveries.notices")

SUBJECTS = {
    NoticeKind.FAILING: "Webhook endpoint failing: {name}",
    NoticeKind.DISABLED: "Webhook endpoint disabled: {name}",
    NoticeKind.RECOVERED: "Webhook endpoint recovered: {name}",
}


def replay_statuses(notice: EndpointNotice) -> tuple[str, ...]:
    """The statuses a replay of what `notice`'s incident missed should select."""
    return REPLAY_STATUSES[notice.kind]


def replay_query(notice: EndpointNotice) -> dict[str, object] | None:
    """Parameters of a replay of what the incident missed, as the replay form and the API take
    them (`since` in ISO 8601, `status` a list); None when it missed nothing."""
    if notice.missed_since is None:
        return None
    return {"since": isoformat(notice.missed_since), "status": list(replay_statuses(notice))}


def replay_form_query(notice: EndpointNotice) -> dict[str, object] | None:
    """`replay_query` for the replay forms (the admin's, the portal's): `since` in the current
    time zone as `YYYY-MM-DDTHH:MM:SS`, which a text field and a `datetime-local` input both
    read; None when the incident missed nothing."""
    if notice.missed_since is None:
        return None
    since = timezone.localtime(notice.missed_since).strftime("%Y-%m-%dT%H:%M:%S")
    return {"since": since, "status": list(replay_statuses(notice))}


# --- Making notices (called from the attempt path and the disable receiver) -------------------


def endpoint_failing(subscription: Subscription, started: dt.datetime) -> EndpointNotice | None:
    """The `failing` notice of the incident that began at `started` (the `failing_since` the
    caller just wrote); None if it exists already or cannot be written, or if the endpoint
    recovered less than `NOTICE_COOLDOWN` ago: then the previous incident goes on (flapping,
    see `_resume_incident`) and no notice is made."""
    disable_at = started + dt.timedelta(seconds=float(webhook_settings.DISABLE_AFTER))
    if _resume_incident(subscription, disable_at):
        return None
    return _make(subscription, NoticeKind.FAILING, started, disable_at=disable_at)


def endpoint_recovered(
    subscription: Subscription, started: dt.datetime, status: int | None = None
) -> EndpointNotice | None:
    """The `recovered` notice of the incident that a success has just ended: the failing run
    that began at `started`, or, after flapping, the incident of the last `failing` notice,
    which began earlier (one pair covers the period). With `NOTICE_COOLDOWN` the notice is
    pending until the cool-down passes (`release_due`): signalled and announced then.

    Its reason is that first success (`status`, the HTTP status of the attempt that ended the
    run; the notice is made as it ends, so the notice's time is the success's), never the
    incident's last error: a recovery reads "Recovered", then what recovered it."""
    opened = _open_incident_start(subscription)
    if opened is not None and opened < started:
        started = opened
    cooldown = float(webhook_settings.NOTICE_COOLDOWN or 0)
    pending_until = timezone.now() + dt.timedelta(seconds=cooldown) if cooldown > 0 else None
    return _make(
        subscription,
        NoticeKind.RECOVERED,
        started,
        reason=first_success(status),
        pending_until=pending_until,
    )


def first_success(status: int | None) -> str:
    """A recovered notice's reason: "First success: receiver answered 200"."""
    if status is None:
        return "First success"
    return f"First success: receiver answered {status}"


def _open_incident_start(subscription: Subscription) -> dt.datetime | None:
    """Start of the incident still open on the notices: the last notice is a `failing` one."""
    last = EndpointNotice.objects.filter(subscription_id=subscription.pk).first()
    if last is None or last.kind != NoticeKind.FAILING:
        return None
    return last.incident_started_at


def _resume_incident(subscription: Subscription, disable_at: dt.datetime) -> bool:
    """A failure while the endpoint's `recovered` notice is still pending (within the
    cool-down): withdraw that notice, so the incident of its `failing` notice goes on, and
    move that notice's `disable_at` to the new run's. True if so.

    A guarded DELETE decides against a concurrent `release_due`: whichever comes first wins;
    if the notice was released, this failure opens a new incident as usual.
    """
    now = timezone.now()
    pending = (
        EndpointNotice.objects.filter(
            subscription_id=subscription.pk,
            kind=NoticeKind.RECOVERED,
            pending_until__isnull=False,
        )
        .order_by("-created_at")
        .first()
    )
    if pending is None:
        return False
    if pending.pending_until is None or pending.pending_until <= now:
        release_due(now, subscription_id=subscription.pk)  # due: final first, then a new one
        return False
    try:
        with transaction.atomic():
            withdrawn, _ = EndpointNotice.objects.filter(
                pk=pending.pk, pending_until__isnull=False
            ).delete()
            if withdrawn:
                EndpointNotice.objects.filter(
                    subscription_id=subscription.pk,
                    kind=NoticeKind.FAILING,
                    incident_started_at=pending.incident_started_at,
                ).update(disable_at=disable_at)
    except DatabaseError:
        logger.exception(
            "could not withdraw notice %s of subscription %s", pending.pk, subscription.pk
        )
        return False
    if withdrawn:
        logger.info(
            "endpoint notice withheld: subscription=%s failed again within NOTICE_COOLDOWN of "
            "recovering; the incident of %s goes on",
            subscription.pk,
            pending.incident_started_at.isoformat(),
            extra={"subscription_id": str(subscription.pk), "notice": "flapping"},
        )
    return bool(withdrawn)


def release_due(now: dt.datetime | None = None, *, subscription_id: uuid.UUID | None = None) -> int:
    """Make final the pending `recovered` notices whose cool-down has passed: each is sent as
    the `endpoint_notice` signal (and so announced) exactly once, a guarded UPDATE deciding
    between concurrent callers. Returns how many were released. Run every minute by beat
    (`webhooks-release-notices`)."""
    now = now or timezone.now()
    due = EndpointNotice.objects.filter(pending_until__lte=now)
    if subscription_id is not None:
        due = due.filter(subscription_id=subscription_id)
    released = 0
    for pk in list(due.order_by("pending_until").values_list("pk", flat=True)[:500]):
        if EndpointNotice.objects.filter(pk=pk, pending_until__isnull=False).update(
            pending_until=None
        ):
            notice = EndpointNotice.objects.filter(pk=pk).first()
            if notice is not None:
                # Bound now (partial): a closure would see the loop's last notice.
                transaction.on_commit(functools.partial(_announce, notice))
                released += 1
    return released


def endpoint_disabled(subscription_id: uuid.UUID, reason: str) -> EndpointNotice | None:
    """The `disabled` notice of a subscription that was just disabled (after commit)."""
    row = Subscription.objects.filter(pk=subscription_id).first()
    if row is None or row.is_active or row.disabled_at is None:
        return None  # deleted, or enabled again meanwhile
    started = row.failing_since or row.disabled_at
    return _make(row, NoticeKind.DISABLED, started, reason=reason)


def _make(
    subscription: Subscription,
    kind: str,
    started: dt.datetime,
    *,
    disable_at: dt.datetime | None = None,
    reason: str = "",
    pending_until: dt.datetime | None = None,
) -> EndpointNotice | None:
    try:
        missed_count, missed_since = _missed(subscription.pk, kind, started)
        notice = EndpointNotice(
            subscription=subscription,
            tenant_id=str(subscription.tenant_id),  # never null: the column is NOT NULL
            kind=kind,
            incident_started_at=started,
            disable_at=disable_at,
            # The last error explains a failing or disabled endpoint, never a recovered one.
            reason=(reason or _explanation(subscription, kind, started))[:ERROR_MAX_CHARS],
            missed_count=missed_count,
            missed_since=missed_since,
            pending_until=pending_until,
        )
        with transaction.atomic():
            notice.save(force_insert=True)
    except IntegrityError:
        return None  # another worker made this incident's notice first
    except DatabaseError:
        logger.exception("could not record the %s notice of subscription %s", kind, subscription.pk)
        return None
    logger.info(
        "endpoint notice %s subscription=%s incident_started=%s missed=%d",
        kind,
        subscription.pk,
        started.isoformat(),
        missed_count,
        extra={"subscription_id": str(subscription.pk), "notice": kind},
    )
    if pending_until is None:
        transaction.on_commit(lambda: _announce(notice))
    return notice


def _explanation(subscription: Subscription, kind: str, started: dt.datetime) -> str:
    # The last error explains a failing or disabled endpoint, never a recovered one.
    return "" if kind == NoticeKind.RECOVERED else _last_error(subscription, started)


def _missed(
    subscription_id: uuid.UUID, kind: str, started: dt.datetime
) -> tuple[int, dt.datetime | None]:
    """Deliveries of the incident not received (count, oldest creation time): those in the
    statuses a replay of this kind selects that changed since the incident began. For a
    disabled endpoint, what still waits counts too: it is being discarded by the disable."""
    statuses = set(REPLAY_STATUSES[kind])
    if kind == NoticeKind.DISABLED:
        statuses |= set(WAITING)
    figures = Delivery.objects.filter(
        subscription_id=subscription_id,
        status__in=sorted(statuses),
        updated_at__gte=started - INCIDENT_MARGIN,
    ).aggregate(oldest=Min("created_at"), count=Count("pk"))
    return figures["count"], figures["oldest"]


def _last_error(subscription: Subscription, started: dt.datetime) -> str:
    """What the endpoint answered last in the incident, in one line by its error kind
    ("Receiver answered 503", "Connection refused by 127.0.0.1:9000"): a notice is read by
    people, in the portal, in e-mails and by the operator's webhook; the raw detail stays on
    the attempt."""
    last = (
        DeliveryAttempt.objects.filter(
            delivery__subscription_id=subscription.pk,
            started_at__gte=started - INCIDENT_MARGIN,
        )
        .exclude(response_status__gte=200, response_status__lt=300)
        .order_by("-started_at")
        .first()
    )
    if last is None:
        return ""
    return summarize(last.error_kind, last.response_status, last.error, subscription.url)


# --- After commit: the signal, then the announcement -------------------------------------------


def _announce(notice: EndpointNotice) -> None:
    signals.endpoint_notice.send(sender=EndpointNotice, notice=notice)


def wants_announcement() -> bool:
    """Whether notices are emailed or POSTed anywhere (`NOTICE_EMAIL`, `NOTICE_WEBHOOK_URL`)."""
    return bool(webhook_settings.NOTICE_EMAIL or webhook_settings.NOTICE_WEBHOOK_URL)


def queue_announcement(notice: EndpointNotice) -> None:
    """Hand the email and the operator webhook of `notice` to a worker (maintenance queue), so
    that neither waits inside an attempt or a request. If the broker refuses, they are sent
    here and now: a notice is rare, and losing it would hide the incident it reports."""
    if not wants_announcement():
        return
    try:
        dispatch.send(
            dispatch.ANNOUNCE_NOTICE, (notice.pk,), queue=webhook_settings.MAINTENANCE_QUEUE
        )
    except dispatch.BROKER_ERRORS as exc:
        logger.warning("broker unavailable, announcing notice %s inline: %s", notice.pk, exc)
        announce(notice.pk)


@dataclass(frozen=True)
class Announcement:
    email: str  # what happened to the email ("" when NOTICE_EMAIL is off)
    webhook: str  # what happened to the operator webhook ("" when no URL is set)


def announce(notice_id: int, now: dt.datetime | None = None) -> Announcement | None:
    """Email the notice to its endpoint's contact and POST it to the operator URL, as the
    settings ask; record what happened on the notice. At most once per notice (a guarded
    UPDATE claims it): None if it was announced already or no longer exists."""
    now = now or timezone.now()
    if not EndpointNotice.objects.filter(pk=notice_id, announced_at__isnull=True).update(
        announced_at=now
    ):
        return None
    notice = (
        EndpointNotice.objects.select_related("subscription", "subscription__owner", "tenant")
        .filter(pk=notice_id)
        .first()
    )
    if notice is None:
        return None
    cap = int(webhook_settings.NOTICE_HOURLY_CAP or 0)
    if cap and _sent_last_hour(notice, now) >= cap:
        held = f"held back: the hourly cap of {cap} notices for this tenant was reached"
        result = Announcement(
            email=held if webhook_settings.NOTICE_EMAIL else "",
            webhook=held if webhook_settings.NOTICE_WEBHOOK_URL else "",
        )
        EndpointNotice.objects.filter(pk=notice_id).update(
            held_back=True, email_result=result.email, webhook_result=result.webhook
        )
        logger.warning(
            "notice %s of tenant %s held back: NOTICE_HOURLY_CAP (%d) reached",
            notice.pk,
            notice.tenant_id,
            cap,
            extra={"subscription_id": str(notice.subscription_id), "notice": notice.kind},
        )
        return result
    notice.held_back_before = _held_back_since_last_sent(notice)
    if notice.held_back_before:
        EndpointNotice.objects.filter(pk=notice_id).update(held_back_before=notice.held_back_before)
    result = Announcement(
        email=_email(notice) if webhook_settings.NOTICE_EMAIL else "",
        webhook=_post(notice, now) if webhook_settings.NOTICE_WEBHOOK_URL else "",
    )
    EndpointNotice.objects.filter(pk=notice_id).update(
        email_result=result.email[:255], webhook_result=result.webhook[:255]
    )
    return result


def _sent_last_hour(notice: EndpointNotice, now: dt.datetime) -> int:
    """Notices of `notice`'s tenant announced (not held back) in the hour before `now`. Two
    workers announcing at the same moment may both pass the cap: it may be exceeded by the
    number of concurrent announcements, never more."""
    return (
        EndpointNotice.objects.filter(
            tenant_id=notice.tenant_id,
            announced_at__gt=now - dt.timedelta(hours=1),
            held_back=False,
        )
        .exclude(pk=notice.pk)
        .count()
    )


def _held_back_since_last_sent(notice: EndpointNotice) -> int:
    """Notices of the tenant held back by the cap since the last one announced before it."""
    tenant = EndpointNotice.objects.filter(tenant_id=notice.tenant_id).exclude(pk=notice.pk)
    last_sent = (
        tenant.filter(held_back=False, announced_at__lt=notice.announced_at)
        .order_by("-announced_at")
        .values_list("announced_at", flat=True)
        .first()
    )
    held = tenant.filter(held_back=True, announced_at__lte=notice.announced_at)
    if last_sent is not None:
        # At the same instant as the last one sent counts too: a notice is held only once
        # others were sent, so it came after that one.
        held = held.filter(announced_at__gte=last_sent)
    return held.count()


def contact_addresses(notice: EndpointNotice) -> list[str]:
    """Who is told about the endpoint: its tenant's contact address, else the email address
    of the subscription's owner while the owner still belongs to the tenant
    (`webhooks_core.tenancy.user_belongs_to`: someone who left must not keep hearing about
    its endpoints); none if neither applies. Raises InvalidContact if the address chosen is
    not exactly one valid address (a row written before `Tenant.save` checked it, or a user's
    email): a list such as "a@b.example, x@evil.example" is never mailed."""
    if notice.tenant.contact_email:
        address = notice.tenant.contact_email
    else:
        owner = notice.subscription.owner
        belongs = owner is not None and user_belongs_to(owner, notice.tenant_id)
        address = getattr(owner, "email", "") if belongs else ""
    if not address:
        return []
    try:
        validate_email(address)
    except DjangoValidationError:
        raise InvalidContact(f"the contact address {address!r} is not one valid address") from None
    return [address]


class InvalidContact(ValueError):
    """The contact address of a notice is not one valid e-mail address."""


def _name(subscription: Subscription) -> str:
    """The endpoint's name on one line (an e-mail subject cannot hold a line break, and a
    description stored before descriptions were checked may have one)."""
    return " ".join((subscription.description or subscription.url).split())


def describe(notice: EndpointNotice) -> str:
    """The notice as plain text (the email's body): what happened, since when, what it means,
    what was missed and how to replay it."""
    sub = notice.subscription
    lines = [
        f"Endpoint: {_name(sub)}",
        f"URL: {sub.url}",
        f"Subscription id: {sub.pk}",
        f"Tenant: {notice.tenant_id}",
        "",
    ]
    started = isoformat(notice.incident_started_at)
    if notice.kind == NoticeKind.FAILING:
        lines.append(f"Every attempt to deliver to it has failed since {started}.")
        if notice.reason:
            lines.append(f"Last error: {notice.reason}")
        lines.append(retry_sentence(retries_waiting(sub.pk)))
        if notice.disable_at is not None:
            lines.append(
                f"If no delivery succeeds before {isoformat(notice.disable_at)}, the endpoint "
                "will be disabled."
            )
    elif notice.kind == NoticeKind.DISABLED:
        lines.append(f"It was disabled: {notice.reason or 'no reason given'}")
        lines.append(f"Its incident began at {started}.")
        lines.append(
            "Nothing is sent to it until it is enabled again; events published meanwhile are "
            "kept and can be replayed then."
        )
    else:
        lines.append(f"It accepts deliveries again: the failures that began at {started} ended.")
        if notice.reason:
            lines.append(f"{notice.reason}, at {isoformat(notice.created_at)}.")
    if notice.held_back_before:
        lines += [
            "",
            f"{notice.held_back_before} earlier notice(s) for this tenant were not emailed "
            "because of the hourly cap (NOTICE_HOURLY_CAP); they are listed in your webhooks "
            "portal.",
        ]
    query = replay_query(notice)
    if query is not None:
        statuses = ", ".join(cast("list[str]", query["status"]))
        lines += [
            "",
            f"Deliveries it has not received: {notice.missed_count}, the oldest created at "
            f"{query['since']}.",
            f"To send them again, replay from {query['since']} with statuses {statuses} (in "
            f"your webhooks portal, or POST /api/subscriptions/{sub.pk}/replay/ with "
            f'{{"since": "{query["since"]}", "status": {dumps(query["status"]).decode()}}}).',
        ]
    return "\n".join(lines) + "\n"


def _email(notice: EndpointNotice) -> str:
    try:
        recipients = contact_addresses(notice)
    except InvalidContact as exc:
        logger.warning("notice %s: email not sent: %s", notice.pk, exc)
        return f"not sent: {exc}"
    if not recipients:
        return "no contact address"
    subject = SUBJECTS[NoticeKind(notice.kind)].format(name=_name(notice.subscription))
    try:
        send_mail(subject, describe(notice), settings.DEFAULT_FROM_EMAIL, recipients)
    except Exception as exc:  # any backend error: record it, never crash the task
        logger.warning("notice %s: email failed: %s", notice.pk, exc)
        return f"failed: {type(exc).__name__}: {exc}"
    return "sent to " + ", ".join(recipients)


def payload(notice: EndpointNotice) -> dict[str, object]:
    """The operator webhook's JSON body (Standard Webhooks' envelope)."""
    sub = notice.subscription
    return {
        "type": f"endpoint.{notice.kind}",
        "timestamp": isoformat(notice.created_at),
        "data": {
            "notice": notice.pk,
            "tenant": notice.tenant_id,
            "subscription": {"id": str(sub.pk), "url": sub.url, "description": sub.description},
            "incident_started_at": isoformat(notice.incident_started_at),
            "disable_at": isoformat(notice.disable_at) if notice.disable_at else None,
            "reason": notice.reason,
            "missed": notice.missed_count,
            "replay": replay_query(notice),
            # Notices of this tenant not posted since the last one, by NOTICE_HOURLY_CAP.
            "held_back": notice.held_back_before,
        },
    }


def _post(notice: EndpointNotice, now: dt.datetime) -> str:
    body = dumps(payload(notice))
    msg_id = f"notice_{notice.pk}"
    timestamp = int(now.timestamp())
    headers = {
        "content-type": "application/json",
        "user-agent": webhook_settings.USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
    }
    secret = webhook_settings.NOTICE_WEBHOOK_SECRET
    if secret:
        headers["webhook-signature"] = signature_header([secret], msg_id, timestamp, body)
    result = send(
        webhook_settings.NOTICE_WEBHOOK_URL,
        body,
        headers,
        connect_timeout=float(webhook_settings.CONNECT_TIMEOUT),
        timeout=float(webhook_settings.TIMEOUT),
        max_body_bytes=1024,
    )
    if result.ok:
        return f"HTTP {result.status}"
    outcome = f"HTTP {result.status}" if result.status is not None else str(result.error_kind)
    if result.error and result.error != outcome:
        outcome = f"{outcome}: {result.error}"
    logger.warning("notice %s: operator webhook failed: %s", notice.pk, outcome)
    return f"failed: {outcome}"


# --- Reading notices (admin, portal) ---------------------------------------------------------


def for_subscription(subscription_id: uuid.UUID, limit: int = 10) -> list[EndpointNotice]:
    """The subscription's latest `limit` notices, newest first."""
    return list(EndpointNotice.objects.filter(subscription_id=subscription_id)[:limit])


def retries_waiting(subscription_id: uuid.UUID) -> bool:
    """Whether any delivery to the subscription waits for a retry. After a final answer (a 4xx
    other than 408, 409, 425 and 429) or an exhausted schedule, none does: a failing notice must
    not then promise retries."""
    return Delivery.objects.filter(
        subscription_id=subscription_id, status=DeliveryStatus.RETRYING
    ).exists()


def retry_sentence(waiting: bool) -> str:
    """What happens next to a failing endpoint's deliveries, as the email says it."""
    if waiting:
        return "Deliveries are retried on their schedule."
    return (
        "No delivery waits for a retry: the failed ones got a final answer or ran out of "
        "retries. New events are still sent to it."
    )


def disable_time(subscription: Subscription) -> dt.datetime | None:
    """When a failing subscription will be disabled if no attempt succeeds before; None if it
    is not failing."""
    if not subscription.is_active or subscription.failing_since is None:
        return None
    return subscription.failing_since + dt.timedelta(seconds=float(webhook_settings.DISABLE_AFTER))


def current(subscription: Subscription) -> EndpointNotice | None:
    """The notice describing the subscription's state now (see `is_current`), if any."""
    if subscription.is_active and subscription.failing_since is None:
        return None  # healthy: nothing to read
    notice = EndpointNotice.objects.filter(subscription_id=subscription.pk).first()
    return notice if notice is not None and is_current(notice, subscription) else None


def is_current(notice: EndpointNotice, subscription: Subscription) -> bool:
    """Whether `notice` describes the subscription's state now: a `failing` notice of the run
    still going on, a `disabled` notice of a subscription still disabled. A `recovered` notice
    never is (there is nothing to act on)."""
    if notice.kind == NoticeKind.FAILING:
        since = subscription.failing_since
        if not subscription.is_active or since is None or since < notice.incident_started_at:
            return False
        if since == notice.incident_started_at:
            return True
        # A later failing run after flapping (NOTICE_COOLDOWN) continues this incident when
        # no notice came after this one.
        latest = EndpointNotice.objects.filter(subscription_id=subscription.pk).first()
        return latest is not None and latest.pk == notice.pk
    if notice.kind == NoticeKind.DISABLED:
        return not subscription.is_active
    return False
