from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import connections, models
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .ids import uuid7
from .matching import EVENT_TYPE_MAX_LENGTH, patterns_matching
from .secrets import generate_secret


class EventType(models.Model):
    name = models.CharField(
        _("name"),
        max_length=EVENT_TYPE_MAX_LENGTH,
        unique=True,
        help_text=_("Dotted name such as 'order.created'."),
    )
    description = models.TextField(_("description"), blank=True)
    schema = models.JSONField(
        _("JSON schema"),
        null=True,
        blank=True,
        help_text=_("Optional JSON Schema that the data of every published event must match."),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        db_table = "webhooks_event_type"
        ordering = ["name"]
        verbose_name = _("event type")
        verbose_name_plural = _("event types")

    def __str__(self) -> str:
        return self.name


class PayloadFormat(models.TextChoices):
    STANDARD = "standard", _("Standard Webhooks")
    CLOUDEVENTS = "cloudevents", _("CloudEvents 1.0 (structured)")


class SubscriptionQuerySet(models.QuerySet["Subscription"]):
    def active(self) -> SubscriptionQuerySet:
        return self.filter(is_active=True)

    def owned_by(self, user: models.Model) -> SubscriptionQuerySet:
        return self.filter(owner=user)

    def visible_to(self, user: models.Model) -> SubscriptionQuerySet:
        return self if getattr(user, "is_staff", False) else self.owned_by(user)

    def matching(self, event_type: str) -> SubscriptionQuerySet:
        """The subscriptions here whose filters select `event_type`, filtered by the database
        (PostgreSQL and SQLite) without loading a row; elsewhere by a scan in Python."""
        wanted = sorted(patterns_matching(event_type))
        connection = connections[self.db]
        qn = connection.ops.quote_name
        column = f"{qn(self.model._meta.db_table)}.{qn('event_types')}"
        if connection.vendor == "postgresql":
            # jsonb `?|`: does the array hold any of these strings (the GIN-indexable operator).
            return self.filter(
                RawSQL(f"{column} ?| %s", (wanted,), output_field=models.BooleanField())
            )
        if connection.vendor == "sqlite":
            placeholders = ", ".join(["%s"] * len(wanted))
            return self.filter(
                RawSQL(
                    f"EXISTS (SELECT 1 FROM json_each({column}) WHERE value IN ({placeholders}))",
                    tuple(wanted),
                    output_field=models.BooleanField(),
                )
            )
        active, inactive = self.matching_ids(event_type)
        return self.filter(pk__in=active + inactive)

    def count_matching(self, event_type: str) -> tuple[int, int]:
        """(active, all) subscriptions selecting `event_type`, counted by the database."""
        counts = self.matching(event_type).aggregate(
            active=models.Count("pk", filter=models.Q(is_active=True)), total=models.Count("pk")
        )
        return counts["active"], counts["total"]

    def matching_ids(self, event_type: str) -> tuple[list, list]:
        """Ids of the active and of the inactive subscriptions here that select `event_type`."""
        wanted = patterns_matching(event_type)
        active, inactive = [], []
        rows = self.values_list("pk", "event_types", "is_active").order_by()
        for pk, filters, is_active in rows.iterator(chunk_size=5000):
            if not wanted.isdisjoint(filters or ()):
                (active if is_active else inactive).append(pk)
        return active, inactive


class Subscription(models.Model):
    id = models.UUIDField(_("id"), primary_key=True, default=uuid7, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="webhook_subscriptions",
        help_text=_("The user who manages this endpoint through the API."),
    )
    url = models.URLField(_("URL"), max_length=2048, help_text=_("Where events are POSTed."))
    description = models.CharField(_("description"), max_length=500, blank=True)
    event_types = models.JSONField(
        _("event types"),
        default=list,
        help_text=_("Names of event types, 'prefix.*' or '*' for every type."),
    )
    is_active = models.BooleanField(_("active"), default=True, db_index=True)
    disabled_reason = models.CharField(_("disabled reason"), max_length=500, blank=True)
    disabled_at = models.DateTimeField(_("disabled at"), null=True, blank=True)
    payload_format = models.CharField(
        _("payload format"),
        max_length=20,
        choices=PayloadFormat.choices,
        default=PayloadFormat.STANDARD,
    )
    headers = models.JSONField(
        _("custom headers"),
        default=dict,
        blank=True,
        help_text=_("Static headers sent with every delivery, e.g. an Authorization header."),
    )
    rate_limit = models.PositiveIntegerField(
        _("rate limit"),
        null=True,
        blank=True,
        help_text=_("Most deliveries in flight at once to this endpoint; empty for the default."),
    )
    secret = models.CharField(_("secret"), max_length=128, default=generate_secret)
    previous_secret = models.CharField(_("previous secret"), max_length=128, blank=True)
    previous_secret_expires_at = models.DateTimeField(
        _("previous secret expires at"), null=True, blank=True
    )
    failing_since = models.DateTimeField(
        _("failing since"),
        null=True,
        blank=True,
        help_text=_("Start of the current run of failed attempts; empty after a success."),
    )
    last_success_at = models.DateTimeField(_("last success"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = SubscriptionQuerySet.as_manager()

    class Meta:
        db_table = "webhooks_subscription"
        ordering = ["-created_at"]
        verbose_name = _("subscription")
        verbose_name_plural = _("subscriptions")
        indexes = [models.Index(fields=["owner", "-created_at"], name="webhooks_sub_owner_idx")]

    def __str__(self) -> str:
        return self.description or self.url

    def signing_secrets(self, now: dt.datetime | None = None) -> list[str]:
        """The secrets that sign a delivery now: the current one, and the previous one while
        its rotation overlap lasts."""
        now = now or timezone.now()
        keys = [self.secret]
        if (
            self.previous_secret
            and self.previous_secret_expires_at
            and self.previous_secret_expires_at > now
        ):
            keys.append(self.previous_secret)
        return keys
