from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Now
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from subscriptions.matching import EVENT_TYPE_MAX_LENGTH
from subscriptions.models import TENANT_KEY_MAX_LENGTH, Subscription, Tenant, default_tenant
from webhooks_core.ids import uuid7

# Longest ordering key (the columns' size); the API and publish() refuse longer ones.
ORDERING_KEY_MAX_LENGTH = 255


class EventQuerySet(models.QuerySet["Event"]):
    def for_tenant(self, key: str | None) -> EventQuerySet:
        """The events tenant `key` may see: its own and broadcasts (None: none at all)."""
        if key is None:
            return self.none()
        return self.filter(Q(tenant_id=key) | Q(broadcast=True))

    def not_fanned_out(self, before: dt.datetime) -> EventQuerySet:
        """Events stored before `before` whose fan-out never ran (process died, broker down)."""
        return self.filter(fanned_out_at__isnull=True, created_at__lt=before)


class Event(models.Model):
    id = models.UUIDField(_("id"), primary_key=True, default=uuid7, editable=False)
    tenant = models.ForeignKey(
        Tenant,
        verbose_name=_("tenant"),
        on_delete=models.PROTECT,
        default=default_tenant,
        related_name="events",
        # Indexed by the composite indexes that start with it (Meta), not on its own.
        db_index=False,
        help_text=_(
            "The tenant whose subscriptions receive the event (the publisher's, for a broadcast)."
        ),
    )
    broadcast = models.BooleanField(
        _("broadcast"),
        default=False,
        help_text=_("Sent to the matching subscriptions of every tenant."),
    )
    type = models.CharField(_("type"), max_length=EVENT_TYPE_MAX_LENGTH, db_index=True)
    data = models.JSONField(_("data"), default=dict)
    channels = models.JSONField(
        _("channels"),
        default=list,
        blank=True,
        help_text=_(
            "Channel names the event carries: a subscription with channels receives it only "
            "if it carries one of them."
        ),
    )
    idempotency_key = models.CharField(
        _("idempotency key"),
        max_length=255,
        null=True,
        blank=True,
        help_text=_("Publishing again in the same tenant with the same key returns this event."),
    )
    body_hash = models.CharField(
        _("body hash"),
        max_length=64,
        blank=True,
        help_text=_(
            "SHA-256 of the published type and data, to tell a repeat from a conflict "
            "when an idempotency key is reused."
        ),
    )
    target_subscription = models.ForeignKey(
        Subscription,
        verbose_name=_("only for"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("Set for test events: sent to this subscription only."),
    )
    version = models.PositiveSmallIntegerField(
        _("version"),
        null=True,
        blank=True,
        help_text=_("Version of `data`, for types declared in code (the latest when published)."),
    )
    renditions = models.JSONField(
        _("older versions"),
        default=dict,
        blank=True,
        help_text=_(
            'The data rendered in each older declared version ({"1": {...}}) by the host\'s '
            "down-converters at publish time, so every retry sends the same bytes."
        ),
    )
    ordering_key = models.CharField(
        _("ordering key"),
        max_length=ORDERING_KEY_MAX_LENGTH,
        null=True,
        blank=True,
        help_text=_(
            "Events of a tenant with the same key reach each subscription in publish order "
            "(`ordering_seq`), the next once the previous one has ended."
        ),
    )
    ordering_seq = models.PositiveBigIntegerField(
        _("ordering sequence"),
        null=True,
        blank=True,
        help_text=_(
            "Publish order within the tenant's ordering key: 1, 2, 3... assigned under a lock "
            "on the key's counter, so it is also the order in which the events committed."
        ),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now, db_index=True)
    fanned_out_at = models.DateTimeField(_("fanned out"), null=True, blank=True)
    traceparent = models.CharField(
        _("trace parent"),
        max_length=64,
        blank=True,
        default="",
        editable=False,
        help_text=_(
            "The W3C traceparent of the publish span when OpenTelemetry traced it: attempts that "
            "no message carries a trace to (sent by the sweep) join that trace (docs/tracing.md)."
        ),
    )

    objects = EventQuerySet.as_manager()

    class Meta:
        db_table = "webhooks_event"
        ordering = ["-created_at"]
        verbose_name = _("event")
        verbose_name_plural = _("events")
        constraints = [
            # Idempotency keys are the publisher's, so unique per tenant: two tenants' systems
            # may pick the same key without one receiving the other's event.
            models.UniqueConstraint(
                fields=["tenant", "idempotency_key"], name="webhooks_event_tenant_idem_uniq"
            ),
            # One place in the order per key; also the index of the fan-out's look for earlier
            # events of the key not fanned out yet (deliveries/services/ordering.py).
            models.UniqueConstraint(
                fields=["tenant", "ordering_key", "ordering_seq"],
                name="webhooks_event_ordering_uniq",
            ),
        ]
        indexes = [
            models.Index(
                fields=["created_at"],
                condition=Q(fanned_out_at__isnull=True),
                name="webhooks_event_unfanned_idx",
            ),
            models.Index(fields=["tenant", "-created_at"], name="webhooks_event_tenant_idx"),
            # A tenant's event list is its own events or broadcasts: the database combines this
            # small index with the one above instead of reading every event.
            models.Index(
                fields=["-created_at"],
                condition=Q(broadcast=True),
                name="webhooks_event_broadcast_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.id}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SENDING = "sending", _("Sending")
    RETRYING = "retrying", _("Retrying")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    DISCARDED = "discarded", _("Discarded")
    SKIPPED = "skipped", _("Skipped")


class WaitReason(models.TextChoices):
    """Why a delivery that is due waits without an attempt (no attempt number is spent)."""

    NONE = "", _("None")
    ENDPOINT_CAP = "endpoint_cap", _("Endpoint at its in-flight cap")
    TENANT_CAP = "tenant_cap", _("Tenant at its in-flight cap")
    RATE = "rate", _("Endpoint at its max rate")
    RETRY_AFTER = "retry_after", _("Endpoint asked to wait (429 Retry-After)")
    ORDERING = "ordering", _("Behind an earlier event of its ordering key")


# Longest error text kept on a delivery, an attempt or a notice (the columns' size): every
# writer truncates to it.
ERROR_MAX_CHARS = 500

# Waiting for an attempt: the sweep looks at these.
WAITING = (DeliveryStatus.PENDING, DeliveryStatus.RETRYING)
UNFINISHED = (DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.RETRYING)
FINISHED = (
    DeliveryStatus.SUCCEEDED,
    DeliveryStatus.FAILED,
    DeliveryStatus.DISCARDED,
    DeliveryStatus.SKIPPED,
)


class DeliveryQuerySet(models.QuerySet["Delivery"]):
    def unfinished(self) -> DeliveryQuerySet:
        """Pending, being sent or waiting to retry."""
        return self.filter(status__in=UNFINISHED)

    def held(self) -> DeliveryQuerySet:
        """Waiting deliveries held back for their next attempt by a cap or by an earlier
        delivery of their ordering key (`wait_reason`)."""
        return self.filter(status__in=WAITING, wait_attempt=F("attempts") + 1).exclude(
            wait_reason=""
        )

    def due(self, before: dt.datetime) -> DeliveryQuerySet:
        """Waiting deliveries whose next attempt was due before `before`."""
        return self.filter(status__in=WAITING, next_attempt_at__lte=before)

    def expired_claims(self, lease_seconds: float) -> DeliveryQuerySet:
        """Claimed more than `lease_seconds` ago, judged on the database's clock (`Now()` in
        the statement, as the claim was written): its worker has not finished in time and is
        presumed dead."""
        return self.filter(
            status=DeliveryStatus.SENDING,
            claimed_at__lt=Now() - dt.timedelta(seconds=lease_seconds),
        )

    def for_tenant(self, key: str | None) -> DeliveryQuerySet:
        """The deliveries to tenant `key`'s subscriptions (None: none at all).

        Read from the row's copy of its subscription's tenant (`tenant_key`, which the log's
        indexes lead with), not through a join: a subscription's tenant never changes, and
        with both conditions the planner multiplied their selectivities and read a small
        tenant's history endpoint by endpoint (bench/logsearch.py). A row without the copy
        (only raw SQL can make one) is hidden, never shown to another tenant."""
        if key is None:
            return self.none()
        return self.filter(tenant_key=key)

    def bulk_create(self, objs: Any, *args: Any, **kwargs: Any) -> list[Delivery]:
        """Django's `bulk_create`, filling in `tenant_key` from the subscriptions for rows
        created without it (one query for all of them; the fan-out sets it itself)."""
        objs = list(objs)
        missing = {row.subscription_id for row in objs if not row.tenant_key}
        if missing:
            tenants = dict(
                Subscription.objects.using(self.db)
                .filter(pk__in=missing)
                .values_list("pk", "tenant_id")
            )
            for row in objs:
                if not row.tenant_key:
                    row.tenant_key = tenants.get(row.subscription_id, "")
        return super().bulk_create(objs, *args, **kwargs)


class Delivery(models.Model):
    event = models.ForeignKey(
        Event, verbose_name=_("event"), on_delete=models.CASCADE, related_name="deliveries"
    )
    subscription = models.ForeignKey(
        Subscription,
        verbose_name=_("subscription"),
        on_delete=models.CASCADE,
        related_name="deliveries",
    )
    status = models.CharField(
        _("status"), max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(
        _("attempts"), default=0, help_text=_("Attempts started so far.")
    )
    next_attempt_at = models.DateTimeField(
        _("next attempt at"),
        null=True,
        blank=True,
        help_text=_("When the next attempt is due; empty once the delivery is finished."),
    )
    claimed_at = models.DateTimeField(_("claimed at"), null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(
        _("last status code"), null=True, blank=True
    )
    last_error = models.CharField(_("last error"), max_length=ERROR_MAX_CHARS, blank=True)
    wait_reason = models.CharField(
        _("waiting for"),
        max_length=16,
        choices=WaitReason.choices,
        blank=True,
        default="",
        help_text=_(
            "Why attempt `wait_attempt` is held back without being sent (a cap, or an earlier "
            "delivery of its ordering key)."
        ),
    )
    wait_attempt = models.PositiveIntegerField(
        _("held attempt"),
        null=True,
        blank=True,
        help_text=_(
            "The attempt `wait_reason` holds back; the reason is over once that attempt starts."
        ),
    )
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    version = models.PositiveSmallIntegerField(
        _("version"),
        null=True,
        blank=True,
        help_text=_(
            "The event type version this delivery sends (the subscription's pin); empty for "
            "types not declared in code."
        ),
    )
    ordering_key = models.CharField(
        _("ordering key"),
        max_length=ORDERING_KEY_MAX_LENGTH,
        null=True,
        blank=True,
        help_text=_("The event's ordering key (copied, so the claim's guard reads one table)."),
    )
    ordering_seq = models.PositiveBigIntegerField(
        _("ordering sequence"),
        null=True,
        blank=True,
        help_text=_("The event's place in its key's publish order."),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    # The subscription's tenant, copied when the row is created (a subscription's tenant never
    # changes), so that the log's indexes can lead with it: without it a small tenant's search
    # read every tenant's newest deliveries to find its own (bench/logsearch.py).
    tenant_key = models.CharField(
        _("tenant"),
        max_length=TENANT_KEY_MAX_LENGTH,
        # Filled in by save() and bulk_create() from the subscription when not given.
        default="",
        editable=False,
        help_text=_("The tenant of the subscription, copied for the log's indexes."),
    )

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        db_table = "webhooks_delivery"
        ordering = ["-created_at"]
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        constraints = [
            models.UniqueConstraint(
                fields=["event", "subscription"], name="webhooks_delivery_event_subscription_uniq"
            ),
        ]
        indexes = [
            # The sweep: waiting deliveries by due time.
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status__in=["pending", "retrying"]),
                name="webhooks_delivery_due_idx",
            ),
            # Stale claims.
            models.Index(
                fields=["claimed_at"],
                condition=Q(status="sending"),
                name="webhooks_delivery_sending_idx",
            ),
            # History of one endpoint, newest first, optionally by status (admin, API, replay).
            models.Index(fields=["subscription", "-created_at"], name="webhooks_delivery_sub_idx"),
            models.Index(
                fields=["subscription", "status", "created_at"],
                name="webhooks_delivery_sub_st_idx",
            ),
            models.Index(fields=["status", "-created_at"], name="webhooks_delivery_status_idx"),
            models.Index(fields=["-created_at"], name="webhooks_delivery_created_idx"),
            # A tenant's log, newest first, optionally by status (the searches of the API and
            # the portal, bulk retry): bench/logsearch.py.
            models.Index(fields=["tenant_key", "-created_at"], name="webhooks_delivery_tenant_idx"),
            models.Index(
                fields=["tenant_key", "status", "-created_at"], name="webhooks_delivery_ten_st_idx"
            ),
            # Ordering: the unfinished deliveries of one (subscription, key) in publish order.
            # The claim's guard, the release of the next one and the blocked-key views read
            # it; deliveries without a key and finished ones are not in it.
            models.Index(
                fields=["subscription", "ordering_key", "ordering_seq"],
                condition=Q(
                    ordering_key__isnull=False, status__in=["pending", "sending", "retrying"]
                ),
                name="webhooks_delivery_order_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"delivery {self.pk} ({self.status})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self.tenant_key and self.subscription_id is not None:
            self.tenant_key = (
                Subscription.objects.filter(pk=self.subscription_id)
                .values_list("tenant_id", flat=True)
                .first()
                or ""
            )
        super().save(*args, **kwargs)

    @property
    def waiting_for(self) -> str:
        """Why this delivery waits without an attempt now (a `WaitReason` value), or ""."""
        if self.status in WAITING and self.wait_reason and self.wait_attempt == self.attempts + 1:
            return self.wait_reason
        return ""

    @property
    def subscription_deleted(self) -> bool:
        """Its endpoint was deleted (the history stays): load with select_related("subscription")
        in lists."""
        return self.subscription.deleted_at is not None

    @property
    def is_finished(self) -> bool:
        """Succeeded, failed, discarded or skipped: no attempt will follow unless it is sent
        again (the portal stops refreshing its page)."""
        return self.status in FINISHED


class ErrorKind(models.TextChoices):
    NONE = "", _("None")
    HTTP_STATUS = "http_status", _("Non-2xx answer")
    TIMEOUT = "timeout", _("Timed out")
    CONNECTION = "connection", _("Connection failed")
    # The receiver answered something that is not HTTP we can read: a malformed status line
    # or header, an oversized header section, a bad chunk or content encoding, no final answer
    # after interim 1xx ones.
    PROTOCOL = "protocol", _("Invalid HTTP answer")
    BLOCKED = "blocked", _("Destination refused (SSRF guard)")
    INVALID_URL = "invalid_url", _("Invalid URL")
    INTERRUPTED = "interrupted", _("Worker lost during the attempt")
    # Our own failure during the attempt (building the request, sending, storing the answer);
    # `error` names the exception. The delivery follows the retry schedule as for any failure.
    INTERNAL = "internal", _("Internal error")


class DeliveryAttempt(models.Model):
    delivery = models.ForeignKey(
        Delivery, verbose_name=_("delivery"), on_delete=models.CASCADE, related_name="attempt_set"
    )
    number = models.PositiveIntegerField(_("number"))
    started_at = models.DateTimeField(_("started"))
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), default=0)
    request_headers = models.JSONField(_("request headers"), default=dict)
    response_status = models.PositiveSmallIntegerField(_("response status"), null=True, blank=True)
    response_headers = models.JSONField(_("response headers"), default=dict)
    response_body = models.TextField(_("response body"), blank=True)
    error_kind = models.CharField(
        _("error kind"), max_length=16, choices=ErrorKind.choices, blank=True, default=""
    )
    error = models.CharField(_("error"), max_length=ERROR_MAX_CHARS, blank=True)
    task_id = models.CharField(_("Celery task id"), max_length=64, blank=True)
    throttled_ms = models.PositiveIntegerField(
        _("throttled (ms)"),
        default=0,
        help_text=_(
            "Time this attempt waited on its endpoint's rate or in-flight caps before it was "
            "sent (deferrals that spent no attempt number)."
        ),
    )

    class Meta:
        db_table = "webhooks_delivery_attempt"
        ordering = ["delivery", "number"]
        verbose_name = _("delivery attempt")
        verbose_name_plural = _("delivery attempts")
        constraints = [
            models.UniqueConstraint(
                fields=["delivery", "number"], name="webhooks_attempt_delivery_number_uniq"
            ),
        ]
        indexes = [models.Index(fields=["started_at"], name="webhooks_attempt_started_idx")]

    def __str__(self) -> str:
        return f"attempt {self.number} of delivery {self.delivery_id}"

    @property
    def succeeded(self) -> bool:
        return self.response_status is not None and 200 <= self.response_status < 300


class NoticeKind(models.TextChoices):
    FAILING = "failing", _("Failing")
    DISABLED = "disabled", _("Disabled")
    RECOVERED = "recovered", _("Recovered")


class EndpointNotice(models.Model):
    """One notice per incident and kind: an endpoint started failing, was disabled, or
    recovered (deliveries/services/notices.py). The unique constraint on (subscription, kind,
    incident start) keeps concurrent workers from making two for one incident."""

    subscription = models.ForeignKey(
        Subscription,
        verbose_name=_("subscription"),
        on_delete=models.CASCADE,
        related_name="notices",
    )
    tenant = models.ForeignKey(
        Tenant,
        verbose_name=_("tenant"),
        on_delete=models.CASCADE,
        related_name="endpoint_notices",
        # Indexed by the composite index that starts with it (Meta), not on its own.
        db_index=False,
        help_text=_("The subscription's tenant, whose contact is told."),
    )
    kind = models.CharField(_("kind"), max_length=16, choices=NoticeKind.choices)
    incident_started_at = models.DateTimeField(
        _("incident started"),
        help_text=_(
            "The incident this notice belongs to: the end of the first failed attempt of the "
            "failing run or, for an endpoint disabled without one, when it was disabled."
        ),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    disable_at = models.DateTimeField(
        _("disabled at (if nothing changes)"),
        null=True,
        blank=True,
        help_text=_(
            "For a failing endpoint: when it will be disabled if no attempt succeeds before "
            "(incident start + DISABLE_AFTER)."
        ),
    )
    reason = models.CharField(
        _("reason"),
        max_length=ERROR_MAX_CHARS,
        blank=True,
        help_text=_("The last error, or why the endpoint was disabled."),
    )
    missed_count = models.PositiveIntegerField(
        _("missed"),
        default=0,
        help_text=_(
            "Deliveries of the incident that had not reached the endpoint when the notice was "
            "made (counted among the statuses a replay would send)."
        ),
    )
    missed_since = models.DateTimeField(
        _("missed since"),
        null=True,
        blank=True,
        help_text=_("Creation time of the oldest of them: a replay from here covers them all."),
    )
    announced_at = models.DateTimeField(
        _("announced"),
        null=True,
        blank=True,
        help_text=_("When the email and the operator webhook were sent (at most once)."),
    )
    email_result = models.CharField(_("email"), max_length=255, blank=True)
    webhook_result = models.CharField(_("operator webhook"), max_length=255, blank=True)
    pending_until = models.DateTimeField(
        _("pending until"),
        null=True,
        blank=True,
        help_text=_(
            "A recovered notice waits until then (NOTICE_COOLDOWN) before it is signalled and "
            "announced; a failure before that withdraws it and the incident goes on."
        ),
    )
    held_back = models.BooleanField(
        _("held back"),
        default=False,
        help_text=_(
            "Not emailed or posted: the tenant's hourly cap (NOTICE_HOURLY_CAP) was reached."
        ),
    )
    held_back_before = models.PositiveIntegerField(
        _("held back before"),
        default=0,
        help_text=_(
            "How many notices of the tenant were held back by the hourly cap since the last one "
            "sent; this one says so."
        ),
    )

    class Meta:
        db_table = "webhooks_endpoint_notice"
        ordering = ["-created_at", "-pk"]
        verbose_name = _("endpoint notice")
        verbose_name_plural = _("endpoint notices")
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "kind", "incident_started_at"],
                name="webhooks_notice_one_per_incident",
            ),
        ]
        indexes = [
            models.Index(fields=["subscription", "-created_at"], name="webhooks_notice_sub_idx"),
            models.Index(fields=["tenant", "-created_at"], name="webhooks_notice_tenant_idx"),
            models.Index(fields=["-created_at"], name="webhooks_notice_created_idx"),
            # The hourly cap counts a tenant's recent announcements.
            models.Index(fields=["tenant", "announced_at"], name="webhooks_notice_announced_idx"),
            # The periodic release reads the few recovered notices still pending.
            models.Index(fields=["pending_until"], name="webhooks_notice_pending_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.subscription_id}"


class AttemptCounts(models.Model):
    """Attempts of one hour (UTC, `hour` is its start), counted by the rollup task
    (deliveries/services/rollups.py): how many, how many got a 2xx, and how many took at most
    each latency bound (`le_<ms>`, the bounds of health.LATENCY_BUCKETS_MS), so the 24 h
    figures and their p95 sum at most 24 rows instead of reading every attempt."""

    hour = models.DateTimeField(_("hour"))
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    succeeded = models.PositiveIntegerField(_("succeeded"), default=0)
    le_10 = models.PositiveIntegerField(default=0)
    le_25 = models.PositiveIntegerField(default=0)
    le_50 = models.PositiveIntegerField(default=0)
    le_100 = models.PositiveIntegerField(default=0)
    le_250 = models.PositiveIntegerField(default=0)
    le_500 = models.PositiveIntegerField(default=0)
    le_1000 = models.PositiveIntegerField(default=0)
    le_2500 = models.PositiveIntegerField(default=0)
    le_5000 = models.PositiveIntegerField(default=0)
    le_10000 = models.PositiveIntegerField(default=0)
    le_15000 = models.PositiveIntegerField(default=0)
    le_30000 = models.PositiveIntegerField(default=0)

    class Meta:
        abstract = True


class SubscriptionHour(AttemptCounts):
    subscription = models.ForeignKey(
        Subscription,
        verbose_name=_("subscription"),
        on_delete=models.CASCADE,
        related_name="+",
        # Indexed by the unique constraint that starts with it.
        db_index=False,
    )

    class Meta:
        db_table = "webhooks_subscription_hour"
        verbose_name = _("hourly attempts of a subscription")
        verbose_name_plural = _("hourly attempts of subscriptions")
        constraints = [
            models.UniqueConstraint(fields=["subscription", "hour"], name="webhooks_sub_hour_uniq"),
        ]
        indexes = [
            # The pruning of old buckets.
            models.Index(fields=["hour"], name="webhooks_sub_hour_idx"),
            # The dashboard's unhealthiest endpoints: only the hours with a failed attempt.
            models.Index(
                fields=["hour"],
                condition=Q(attempts__gt=models.F("succeeded")),
                name="webhooks_sub_hour_failed_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subscription_id} {self.hour:%Y-%m-%d %H}:00 UTC"


class TenantHour(AttemptCounts):
    tenant = models.ForeignKey(
        Tenant,
        verbose_name=_("tenant"),
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
    )

    class Meta:
        db_table = "webhooks_tenant_hour"
        verbose_name = _("hourly attempts of a tenant")
        verbose_name_plural = _("hourly attempts of tenants")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "hour"], name="webhooks_tenant_hour_uniq"),
        ]
        indexes = [models.Index(fields=["hour"], name="webhooks_tenant_hour_idx")]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.hour:%Y-%m-%d %H}:00 UTC"


class RollupMark(models.Model):
    """How far a rollup has counted: every attempt started before `upto` is in the buckets,
    none after. One row per rollup (`name`); moved only by a guarded UPDATE (from the value a
    run read to the next), so two runs at once never count the same attempts twice."""

    name = models.CharField(_("name"), max_length=32, primary_key=True)
    upto = models.DateTimeField(_("counted up to"))

    class Meta:
        db_table = "webhooks_rollup_mark"
        verbose_name = _("rollup mark")
        verbose_name_plural = _("rollup marks")

    def __str__(self) -> str:
        return f"{self.name} up to {self.upto:%Y-%m-%d %H:%M:%S}"


class OrderingCounter(models.Model):
    """The last `ordering_seq` given to an event of one tenant's ordering key. Publishing with
    the key increments it inside the publishing transaction, so a second publish of the same
    key waits for the first to commit or roll back: sequence order is commit order."""

    tenant = models.ForeignKey(
        Tenant,
        verbose_name=_("tenant"),
        on_delete=models.CASCADE,
        related_name="+",
        # Indexed by the unique constraint that starts with it.
        db_index=False,
    )
    key = models.CharField(_("ordering key"), max_length=ORDERING_KEY_MAX_LENGTH)
    last_seq = models.PositiveBigIntegerField(_("last sequence"), default=0)

    class Meta:
        db_table = "webhooks_ordering_counter"
        verbose_name = _("ordering key counter")
        verbose_name_plural = _("ordering key counters")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "key"], name="webhooks_ordering_counter_uniq"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.key}: {self.last_seq}"


class WorkerClock(models.Model):
    """A worker process's last measured offset from the database's clock
    (`deliveries.services.clock`): the metric and the admin dashboard show it."""

    worker = models.CharField(_("worker"), max_length=200, unique=True, help_text=_("host:pid"))
    offset_seconds = models.FloatField(
        _("offset (s)"),
        help_text=_("The database's clock minus the worker's; positive: the worker is behind."),
    )
    measured_at = models.DateTimeField(_("measured"), help_text=_("On the database's clock."))

    class Meta:
        db_table = "webhooks_worker_clock"
        verbose_name = _("worker clock")
        verbose_name_plural = _("worker clocks")

    def __str__(self) -> str:
        return f"{self.worker}: {self.offset_seconds:+.3f} s"


class BulkRetrySource(models.TextChoices):
    API = "api", _("API")
    ADMIN = "admin", _("Admin")
    PORTAL = "portal", _("Portal")


class BulkRetry(models.Model):
    """One bulk retry of the deliveries matching a search (`deliveries.services.bulk_retry`):
    who asked, when, from where, with which criteria, how many matched and how many were
    queued. Written once, never changed (read-only in the admin); dry runs are not recorded."""

    created_at = models.DateTimeField(_("created"), default=timezone.now, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        # The record outlives the user: `username` keeps the name.
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    username = models.CharField(
        _("user name"),
        max_length=150,
        blank=True,
        help_text=_("The user's name when the retry was asked for (kept if the user is deleted)."),
    )
    tenant = models.CharField(
        _("tenant"),
        max_length=255,
        blank=True,
        help_text=_("The tenant the retry was limited to; empty for a cross-tenant operator."),
    )
    source = models.CharField(
        _("from"), max_length=16, choices=BulkRetrySource.choices, default=BulkRetrySource.API
    )
    criteria = models.JSONField(
        _("search"), default=dict, help_text=_("The search whose matches were retried.")
    )
    matched = models.PositiveIntegerField(_("matched"), default=0)
    queued = models.PositiveIntegerField(
        _("queued"),
        default=0,
        help_text=_(
            "Deliveries given one more attempt; the others were being sent, already queued, "
            "or their endpoint is disabled."
        ),
    )

    class Meta:
        db_table = "webhooks_bulk_retry"
        ordering = ["-created_at"]
        verbose_name = _("bulk retry")
        verbose_name_plural = _("bulk retries")

    def __str__(self) -> str:
        return f"bulk retry {self.pk}: {self.queued} of {self.matched}"
