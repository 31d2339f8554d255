from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any, cast

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import IntegrityError, connections, models, transaction
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from webhooks_core.conf import webhook_settings
from webhooks_core.fields import EncryptedHeadersField, EncryptedTextField
from webhooks_core.ids import uuid7
from webhooks_core.tenancy import (  # the model's rules; defined where requests use them
    TENANT_KEY_MAX_LENGTH,
    TENANT_KEY_RE,
    default_tenant_key,
    is_valid_tenant_key,
)
from webhooks_core.text import validate_multiline, validate_one_line

from .channels import validate_channel_field
from .filterlang import (
    event_document,
    jsonpath_document,
    matches,
    to_jsonpath,
    validate_filter,
)
from .matching import EVENT_TYPE_MAX_LENGTH, patterns_matching
from .secrets import generate_secret, generate_signing_key, public_key

validate_tenant_key = RegexValidator(
    TENANT_KEY_RE,
    _("A tenant key is 1 to 255 letters, digits, '.', '_', ':' or '-', and not '.' or '..'."),
    code="invalid_tenant_key",
)


# An in-flight cap of 0 would hold every delivery for good, without an error: "no cap" is
# empty (null), and pausing is disabling the endpoint. Refused by the model, the admin and the API.
validate_in_flight_limit = MinValueValidator(
    1,
    _("At least 1. Leave it empty for the default; to pause deliveries, disable the endpoint."),
)


# A rate in events per second: above 0 (no rate is empty, null; pausing is disabling), at most
# MAX_RATE_PER_SECOND. The smallest, 0.01, is one event every 100 s.
MIN_RATE_PER_SECOND = 0.01
MAX_RATE_PER_SECOND = 10_000.0
validate_rate = [
    MinValueValidator(
        MIN_RATE_PER_SECOND,
        _("At least 0.01 (one event every 100 s). Leave it empty for the default."),
    ),
    MaxValueValidator(MAX_RATE_PER_SECOND),
]


class TenantQuerySet(models.QuerySet["Tenant"]):
    def for_key(self, key: str) -> Tenant:
        """The tenant with this key, created on first use (its name is the key).

        Raises django.core.exceptions.ValidationError if `key` is not 1-255 characters of
        `[A-Za-z0-9._:-]`. Safe under concurrency: two first uses create one row.
        """
        if not is_valid_tenant_key(key):
            # The validator alone would turn None or 42 into a string and accept it.
            validate_tenant_key(key if isinstance(key, str) else "")
        tenant = self.filter(pk=key).first()
        if tenant is not None:
            return tenant
        try:
            with transaction.atomic(using=self.db):
                return self.create(key=key, name=key)
        except IntegrityError:
            return self.get(pk=key)

    def default(self) -> Tenant:
        """The tenant of everything created or published without one (`DEFAULT_TENANT`)."""
        return self.for_key(default_tenant_key())


def default_tenant() -> str:
    """Model default of every `tenant` field: the default tenant's key, its row created on
    first use, so code that creates a subscription or an event without a tenant keeps working.

    Reads the primary key only, so the migrations that add `tenant` columns can call it
    whatever columns later versions of Tenant have (their data step creates the row).
    """
    key = default_tenant_key()
    if not Tenant.objects.filter(pk=key).exists():
        Tenant.objects.for_key(key)
    return key


class Tenant(models.Model):
    """One of the host's customer accounts. Every subscription and every event belongs to one;
    the key is what the host's code and the API name it by."""

    key = models.CharField(
        _("key"),
        max_length=TENANT_KEY_MAX_LENGTH,
        primary_key=True,
        validators=[validate_tenant_key],
        help_text=_("Chosen by the host, e.g. 'org_42': letters, digits, '.', '_', ':', '-'."),
    )
    name = models.CharField(_("name"), max_length=255, blank=True, validators=[validate_one_line])
    contact_email = models.EmailField(
        _("contact email"),
        blank=True,
        help_text=_(
            "One address, where notices about this tenant's endpoints go (failing, disabled, "
            "recovered)."
        ),
    )
    max_subscriptions = models.PositiveIntegerField(
        _("max subscriptions"),
        null=True,
        blank=True,
        help_text=_("Most subscriptions of this tenant; empty for the default."),
    )
    max_in_flight = models.PositiveIntegerField(
        _("max deliveries in flight"),
        null=True,
        blank=True,
        validators=[validate_in_flight_limit],
        help_text=_(
            "Most deliveries of this tenant in flight at once, all endpoints together; at "
            "least 1. Empty for the default (TENANT_MAX_IN_FLIGHT; no cap when that is unset). "
            "To pause deliveries, disable the endpoints."
        ),
    )
    max_rate = models.FloatField(
        _("default max rate (events/s)"),
        null=True,
        blank=True,
        validators=validate_rate,
        help_text=_(
            "Most events per second to each endpoint of this tenant that sets no rate of its "
            "own. Empty for the default (MAX_RATE; no rate when that is unset)."
        ),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        db_table = "webhooks_tenant"
        ordering = ["key"]
        verbose_name = _("tenant")
        verbose_name_plural = _("tenants")

    def __str__(self) -> str:
        return self.name or self.key

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Save, refusing a name with control characters or a `contact_email` that is not one
        address (`django.core.exceptions.ValidationError`), whoever saves: code that never calls
        `full_clean()` could otherwise store "a@b.example, x@evil.example" and have notices
        mailed to both."""
        validate_one_line(self.name)
        if self.contact_email:
            email_field = cast(models.Field, self._meta.get_field("contact_email"))
            for validator in email_field.validators:
                validator(self.contact_email)
        super().save(*args, **kwargs)

    @property
    def subscription_limit(self) -> int | None:
        """Most subscriptions: this row's override, else TENANT_MAX_SUBSCRIPTIONS (None: none).
        The default tenant takes its row's override only: in a single-tenant project it is
        the whole project, and a count meant for one customer among many would cap all of it."""
        if self.max_subscriptions is not None:
            return int(self.max_subscriptions)
        if self.key == default_tenant_key():
            return None
        return _setting_limit(webhook_settings.TENANT_MAX_SUBSCRIPTIONS)

    @property
    def in_flight_limit(self) -> int | None:
        """Most deliveries in flight at once: this row's override, else TENANT_MAX_IN_FLIGHT,
        for the default tenant too. Whoever reaches the default tenant (operators, backend
        users, the events published without a tenant) must not hold every worker slot while
        other tenants' deliveries wait (shared/DESIGN.md, "Tenants")."""
        if self.max_in_flight is not None:
            return int(self.max_in_flight)
        return _setting_limit(webhook_settings.TENANT_MAX_IN_FLIGHT)

    @property
    def rate_default(self) -> float | None:
        """Events per second to each of this tenant's endpoints that sets no `max_rate`: this
        row's `max_rate`, else MAX_RATE; None for no rate."""
        value = self.max_rate if self.max_rate else webhook_settings.MAX_RATE
        return float(value) if value else None


def _setting_limit(value: object) -> int | None:
    """A limit setting's value as a number, None (or 0) for no limit. Raises TypeError for a
    value that is not a number (or a string of one)."""
    if not value:
        return None
    if not isinstance(value, int | float | str):
        raise TypeError(f"a limit must be a number, not {type(value).__name__}")
    return int(value)


class EventType(models.Model):
    name = models.CharField(
        _("name"),
        max_length=EVENT_TYPE_MAX_LENGTH,
        unique=True,
        help_text=_("Dotted name such as 'order.created'."),
    )
    description = models.TextField(
        _("description"),
        blank=True,
        validators=[validate_multiline],
        help_text=_("What the event means; no control characters other than line breaks."),
    )
    schema = models.JSONField(
        _("JSON schema"),
        null=True,
        blank=True,
        help_text=_("Optional JSON Schema that the data of every published event must match."),
    )
    declared = models.BooleanField(
        _("declared in code"),
        default=False,
        help_text=_(
            "Declared by the host's code (register_event): its versions and schemas come from "
            "serializers and are refreshed by every migrate; not editable here."
        ),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        db_table = "webhooks_event_type"
        ordering = ["name"]
        verbose_name = _("event type")
        verbose_name_plural = _("event types")

    def __str__(self) -> str:
        return self.name


class EventTypeVersion(models.Model):
    """One version of a type declared in code, as the catalog shows it: written from the
    registry (`subscriptions.contracts`) by `catalog.sync_catalog` after every migrate."""

    event_type = models.ForeignKey(
        EventType,
        verbose_name=_("event type"),
        on_delete=models.CASCADE,
        related_name="versions",
    )
    version = models.PositiveSmallIntegerField(_("version"))
    description = models.TextField(_("description"), blank=True)
    schema = models.JSONField(
        _("JSON schema"), help_text=_("Generated from the version's serializer.")
    )
    example = models.JSONField(_("example"), default=dict, blank=True)
    deprecated = models.BooleanField(
        _("deprecated"),
        default=False,
        help_text=_("Still sent to subscriptions pinned to it; no subscription may move to it."),
    )
    created_at = models.DateTimeField(
        _("first declared"),
        auto_now_add=True,
        help_text=_(
            "When the catalog first listed this version. A subscription without a pin for the "
            "type receives the latest version declared before the subscription was created."
        ),
    )

    class Meta:
        db_table = "webhooks_event_type_version"
        ordering = ["event_type", "version"]
        verbose_name = _("event type version")
        verbose_name_plural = _("event type versions")
        constraints = [
            models.UniqueConstraint(
                fields=["event_type", "version"], name="webhooks_event_type_version_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_type_id} v{self.version}"


class PayloadFormat(models.TextChoices):
    STANDARD = "standard", _("Standard Webhooks")
    CLOUDEVENTS = "cloudevents", _("CloudEvents 1.0 (structured)")


class SignatureScheme(models.TextChoices):
    """Which Standard Webhooks signatures a delivery carries (DESIGN.md, Wire format)."""

    V1 = "v1", _("v1: HMAC-SHA256 with the shared secret")
    V1A = "v1a", _("v1a: ed25519, verified with the public key")
    BOTH = "v1 v1a", _("v1 and v1a, while the receiver moves to v1a")


_BOOL: models.BooleanField[bool, bool] = models.BooleanField()


class CompiledFilterField(models.TextField):
    """`filterlang.to_jsonpath` of the model's `filter`, written on every insert (bulk_create
    included) and every save that writes `filter` (Subscription.save adds it to
    `update_fields`): the compiled form can never lag the filter through these paths. A
    `QuerySet.update(filter=...)` or `bulk_update` bypasses it: do not write `filter` that way.
    """

    def pre_save(self, model_instance: models.Model, add: bool) -> str | None:
        value = to_jsonpath(getattr(model_instance, "filter", None))
        setattr(model_instance, self.attname, value)
        return value


class SubscriptionQuerySet(models.QuerySet["Subscription"]):
    def deleted(self) -> SubscriptionQuerySet:
        """Endpoints deleted by their owners: kept, without secrets or header values, while
        their delivery history lasts (`Subscription.all_objects` only)."""
        return self.filter(deleted_at__isnull=False)

    def active(self) -> SubscriptionQuerySet:
        return self.filter(is_active=True)

    def for_tenant(self, key: str | None) -> SubscriptionQuerySet:
        """The subscriptions of tenant `key` (None: none at all)."""
        return self.none() if key is None else self.filter(tenant_id=key)

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

    def carrying(self, channels: Sequence[str] | None) -> SubscriptionQuerySet:
        """The subscriptions here that receive an event carrying `channels`: those without
        channels, and those sharing at least one with the event (DESIGN.md, "Channels")."""
        names = sorted(set(channels or ()))
        connection = connections[self.db]
        qn = connection.ops.quote_name
        column = f"{qn(self.model._meta.db_table)}.{qn('channels')}"
        if connection.vendor == "postgresql":
            if not names:
                return self.filter(RawSQL(f"{column} = '[]'::jsonb", (), output_field=_BOOL))
            # `?|`: does the array hold any of these strings.
            return self.filter(
                RawSQL(f"({column} = '[]'::jsonb OR {column} ?| %s)", (names,), output_field=_BOOL)
            )
        if connection.vendor == "sqlite":
            empty = f"json_array_length({column}) = 0"
            if not names:
                return self.filter(RawSQL(empty, (), output_field=_BOOL))
            marks = ", ".join(["%s"] * len(names))
            return self.filter(
                RawSQL(
                    f"({empty} OR EXISTS (SELECT 1 FROM json_each({column}) "
                    f"WHERE value IN ({marks})))",
                    tuple(names),
                    output_field=_BOOL,
                )
            )
        wanted = set(names)
        ids = [
            pk
            for pk, carried in self.values_list("pk", "channels").iterator(chunk_size=5000)
            if not carried or not wanted.isdisjoint(carried)
        ]
        return self.filter(pk__in=ids)

    def _sql_filters(self, document: dict[str, Any]) -> models.Q | None:
        """On PostgreSQL, the condition "no filter, or a filter left to Python, or a compiled
        filter that `document` satisfies", evaluated by the database (`jsonb_path_match` of the
        subscription's `filter_jsonpath`); None elsewhere (every filter evaluated in Python).

        `silent` is true and the answer compared with IS TRUE: a compiled filter never errs
        (its conditions are never unknown, filterlang.to_jsonpath), and if one ever did the
        subscription would not be sent the event rather than fail the fan-out.
        """
        connection = connections[self.db]
        if connection.vendor != "postgresql":
            return None
        text = jsonpath_document(document)
        if text is None:
            return None
        qn = connection.ops.quote_name
        column = f"{qn(self.model._meta.db_table)}.{qn('filter_jsonpath')}"
        matched = RawSQL(
            f"jsonb_path_match(%s::jsonb, {column}::jsonpath, '{{}}'::jsonb, true) IS TRUE",
            (text,),
            output_field=_BOOL,
        )
        return models.Q(filter_jsonpath__isnull=True) | models.Q(matched)

    def route(
        self,
        event_type: str,
        *,
        channels: Sequence[str] | None = None,
        data: Any = None,
        limit: int | None = None,
    ) -> tuple[list[uuid.UUID], list[uuid.UUID]] | None:
        """Ids of the active and of the inactive subscriptions here that receive an event of
        `event_type` carrying `channels` with `data`; None if more than `limit` candidates.

        Types and channels are matched by the database (`matching`, `carrying`), so only this
        queryset's candidates are read (`for_tenant(key).route(...)` reads that tenant's
        rows through its index). Filters: on PostgreSQL the same query evaluates each
        compiled filter (`filter_jsonpath`, see `_sql_filters`), so a subscription whose
        filter says no is never read; a filter without a compiled form (none today; see
        `filterlang.to_jsonpath`) and every filter elsewhere is evaluated once here by
        `filterlang.matches`. With `limit`, at most `limit` + 1 candidate rows are read (on
        PostgreSQL, candidates whose compiled filter matches).
        """
        document = event_document(event_type, channels, data)
        candidates = self.matching(event_type).carrying(channels)
        in_sql = self._sql_filters(document)
        if in_sql is not None:
            candidates = candidates.filter(in_sql)
        rows = candidates.values_list("pk", "is_active", "filter_jsonpath", "filter").order_by()
        if limit is not None:
            rows = rows[: limit + 1]
        # Fetched at once, not through a server-side cursor: narrow columns, and one round
        # trip instead of three on PostgreSQL for the usual few rows.
        fetched = list(rows)
        if limit is not None and len(fetched) > limit:
            return None
        active: list[uuid.UUID] = []
        inactive: list[uuid.UUID] = []
        for pk, is_active, compiled, filter in fetched:
            if (in_sql is not None and compiled is not None) or matches(filter, document):
                (active if is_active else inactive).append(pk)
        return active, inactive

    def count_routed(
        self,
        event_type: str,
        *,
        channels: Sequence[str] | None = None,
        data: Any = None,
        active: bool = True,
    ) -> int:
        """How many active subscriptions here receive such an event (with `active=False`: how
        many disabled ones would, which the fan-out records as skipped). `routed_counts`
        answers both at once."""
        counts = self.routed_counts(event_type, channels=channels, data=data)
        return counts[0] if active else counts[1]

    def routed_counts(
        self, event_type: str, *, channels: Sequence[str] | None = None, data: Any = None
    ) -> tuple[int, int]:
        """(active, disabled): how many subscriptions here receive such an event, and how many
        disabled ones would (the fan-out records those as skipped). On PostgreSQL the database
        counts those without a filter and those whose compiled filter matches, in one query;
        the rest (every filtered one elsewhere) are read (narrow rows) and evaluated here."""
        document = event_document(event_type, channels, data)
        routed = self.matching(event_type).carrying(channels)
        in_sql = self._sql_filters(document)
        if in_sql is not None:
            counted = routed.filter(in_sql).filter(
                models.Q(filter={}) | models.Q(filter_jsonpath__isnull=False)
            )
            left = routed.filter(filter_jsonpath__isnull=True).exclude(filter={})
        else:
            counted = routed.filter(filter={})
            left = routed.exclude(filter={})
        totals = counted.aggregate(
            active=models.Count("pk", filter=models.Q(is_active=True)),
            disabled=models.Count("pk", filter=models.Q(is_active=False)),
        )
        active, disabled = totals["active"], totals["disabled"]
        for row_filter, is_active in (
            left.values_list("filter", "is_active").order_by().iterator(chunk_size=2000)
        ):
            if matches(row_filter, document):
                if is_active:
                    active += 1
                else:
                    disabled += 1
        return active, disabled

    def count_matching(self, event_type: str) -> tuple[int, int]:
        """(active, all) subscriptions selecting `event_type`, counted by the database."""
        counts = self.matching(event_type).aggregate(
            active=models.Count("pk", filter=models.Q(is_active=True)), total=models.Count("pk")
        )
        return counts["active"], counts["total"]

    def matching_ids(self, event_type: str) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
        """Ids of the active and of the inactive subscriptions here that select `event_type`."""
        wanted = patterns_matching(event_type)
        active: list[uuid.UUID] = []
        inactive: list[uuid.UUID] = []
        rows = self.values_list("pk", "event_types", "is_active").order_by()
        for pk, filters, is_active in rows.iterator(chunk_size=5000):
            if not wanted.isdisjoint(filters or ()):
                (active if is_active else inactive).append(pk)
        return active, inactive


class SubscriptionManager(models.Manager.from_queryset(SubscriptionQuerySet)):  # type: ignore[misc]
    """The default manager: endpoints that exist, never deleted ones. Everything that finds
    endpoints by query (lists, fan-out, limits, the admin, the portal) goes through it; a
    delivery still reaches its deleted endpoint through its foreign key (Django's base
    manager), so history and the attempt in flight keep working."""

    def get_queryset(self) -> SubscriptionQuerySet:
        return super().get_queryset().filter(deleted_at__isnull=True)


class Subscription(models.Model):
    id = models.UUIDField(_("id"), primary_key=True, default=uuid7, editable=False)
    tenant = models.ForeignKey(
        Tenant,
        verbose_name=_("tenant"),
        on_delete=models.PROTECT,
        default=default_tenant,
        related_name="subscriptions",
        # Indexed by the composite indexes that start with it (Meta), not on its own.
        db_index=False,
        help_text=_("The customer account this endpoint belongs to; it receives its events only."),
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        # The tenant owns its endpoints: deleting a user leaves them (and their history).
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="webhook_subscriptions",
        help_text=_("The user who created this endpoint; empty once that user is deleted."),
    )
    url = models.URLField(_("URL"), max_length=2048, help_text=_("Where events are POSTed."))
    description = models.CharField(
        _("description"),
        max_length=500,
        blank=True,
        validators=[validate_one_line],
        help_text=_("A name for people, one line; it appears in notice e-mail subjects."),
    )
    event_types = models.JSONField(
        _("event types"),
        default=list,
        help_text=_("Names of event types, 'prefix.*' or '*' for every type."),
    )
    filter = models.JSONField(
        _("filter"),
        default=dict,
        blank=True,
        validators=[validate_filter],
        help_text=_(
            "A JSON filter over the event (type, channels, data.<path>); only events it "
            "matches are sent. {} for every event of the selected types. See docs/filters.md."
        ),
    )
    filter_jsonpath = CompiledFilterField(
        _("compiled filter"),
        null=True,
        blank=True,
        editable=False,
        help_text=_(
            "The filter as a SQL/JSON path predicate, evaluated by PostgreSQL in the fan-out; "
            "empty when there is no filter or it is evaluated in Python. Derived from filter."
        ),
    )
    channels = models.JSONField(
        _("channels"),
        default=list,
        blank=True,
        validators=[validate_channel_field],
        help_text=_(
            "Only events carrying at least one of these channels are sent; empty for every channel."
        ),
    )
    versions = models.JSONField(
        _("pinned versions"),
        default=dict,
        blank=True,
        help_text=_(
            "Event type name -> the version this endpoint receives, for types declared in code. "
            "A type without a pin gets the latest version declared when the endpoint was created."
        ),
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
    headers = EncryptedHeadersField(
        _("custom headers"),
        default=dict,
        blank=True,
        help_text=_(
            "Static headers sent with every delivery, e.g. an Authorization header. Values are "
            "encrypted at rest and write-only."
        ),
    )
    # Named `rate_limit` until this release (an in-flight cap, not a rate): the column keeps
    # that name, and the API accepts and answers `rate_limit` as an alias for one release.
    max_in_flight = models.PositiveIntegerField(
        _("max deliveries in flight"),
        null=True,
        blank=True,
        db_column="rate_limit",
        validators=[validate_in_flight_limit],
        help_text=_(
            "Most deliveries in flight at once to this endpoint; at least 1. Empty for the "
            "default (MAX_IN_FLIGHT; no cap when that is unset). To pause deliveries, disable "
            "the endpoint."
        ),
    )
    max_rate = models.FloatField(
        _("max rate (events/s)"),
        null=True,
        blank=True,
        validators=validate_rate,
        help_text=_(
            "Most events per second to this endpoint, across all workers (a burst of at most "
            "one second's worth); over it deliveries wait without spending an attempt. Empty "
            "for the tenant's default, else MAX_RATE (no rate when that is unset)."
        ),
    )
    # Encrypted at rest (webhooks_core.fields): these columns hold Fernet tokens.
    secret = EncryptedTextField(
        _("secret"),
        default=generate_secret,
        help_text=_("The `whsec_` secret of v1 (HMAC) signatures; encrypted at rest."),
    )
    previous_secret = EncryptedTextField(_("previous secret"), blank=True)
    previous_secret_expires_at = models.DateTimeField(
        _("previous secret expires at"),
        null=True,
        blank=True,
        help_text=_("Until then the previous secret and signing key sign beside the new ones."),
    )
    signature_scheme = models.CharField(
        _("signature scheme"),
        max_length=8,
        choices=SignatureScheme.choices,
        default=SignatureScheme.V1,
        help_text=_("Which signatures deliveries carry: v1 (HMAC), v1a (ed25519) or both."),
    )
    signing_key = EncryptedTextField(
        _("signing key"),
        blank=True,
        help_text=_("The `whsk_` ed25519 private key of v1a signatures; encrypted at rest."),
    )
    previous_signing_key = EncryptedTextField(_("previous signing key"), blank=True)
    oauth2_token_url = models.URLField(
        _("OAuth2 token URL"),
        max_length=2048,
        blank=True,
        help_text=_(
            "Where a bearer token is fetched with the client credentials grant (RFC 6749 §4.4) "
            "before deliveries; empty for none."
        ),
    )
    oauth2_client_id = models.CharField(_("OAuth2 client id"), max_length=255, blank=True)
    oauth2_client_secret = EncryptedTextField(
        _("OAuth2 client secret"), blank=True, help_text=_("Encrypted at rest; write-only.")
    )
    oauth2_scope = models.CharField(
        _("OAuth2 scope"), max_length=1000, blank=True, help_text=_("Space-separated scopes.")
    )
    tls_client_cert = models.TextField(
        _("TLS client certificate"),
        blank=True,
        help_text=_("PEM certificate (and chain) presented to the receiver for mutual TLS."),
    )
    tls_client_key = EncryptedTextField(
        _("TLS client key"),
        blank=True,
        help_text=_("PEM private key of the client certificate; encrypted at rest, write-only."),
    )
    failing_since = models.DateTimeField(
        _("failing since"),
        null=True,
        blank=True,
        help_text=_("Start of the current run of failed attempts; empty after a success."),
    )
    last_success_at = models.DateTimeField(_("last success"), null=True, blank=True)
    deleted_at = models.DateTimeField(
        _("deleted at"),
        null=True,
        blank=True,
        editable=False,
        help_text=_(
            "Set when the endpoint was deleted: nothing more is sent, its secrets and header "
            "values are erased, its delivery history stays until retention prunes it."
        ),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = SubscriptionManager()
    # Deleted endpoints included: retention's final purge, and tests.
    all_objects = SubscriptionQuerySet.as_manager()

    class Meta:
        db_table = "webhooks_subscription"
        ordering = ["-created_at"]
        verbose_name = _("subscription")
        verbose_name_plural = _("subscriptions")
        indexes = [
            models.Index(fields=["owner", "-created_at"], name="webhooks_sub_owner_idx"),
            # One tenant's subscriptions, newest first: its list, its count against the limit,
            # and the fan-out of its events, which must not read other tenants' rows.
            models.Index(fields=["tenant", "-created_at"], name="webhooks_sub_tenant_idx"),
            # Every tenant's, newest first: the admin list and the API list of an operator.
            models.Index(fields=["-created_at"], name="webhooks_sub_created_idx"),
            # Each tenant's endpoints by state (the tenant list's health): an index-only scan
            # of narrow entries instead of the wide rows (376 -> 109 ms at 100,000 endpoints).
            models.Index(
                fields=["tenant", "is_active", "failing_since"],
                name="webhooks_sub_tenant_state_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.description or self.url

    def save(self, *args: Any, **kwargs: Any) -> None:
        # A subscription signing v1a always has its key, however it got the scheme (API, admin,
        # portal, code): generated here once, rotated by services.rotate_secret.
        if self.uses_v1a and not self.signing_key:
            self.signing_key = generate_signing_key()
            update_fields = kwargs.get("update_fields")
            if update_fields is not None:
                kwargs["update_fields"] = {*update_fields, "signing_key"}
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "filter" in update_fields:
            # Compiled with the filter (CompiledFilterField.pre_save), never left behind.
            kwargs["update_fields"] = {*update_fields, "filter_jsonpath"}
        super().save(*args, **kwargs)

    @property
    def uses_v1(self) -> bool:
        return SignatureScheme.V1 in (self.signature_scheme or "").split()

    @property
    def uses_v1a(self) -> bool:
        return SignatureScheme.V1A in (self.signature_scheme or "").split()

    @property
    def public_key(self) -> str | None:
        """The `whpk_` key receivers verify v1a signatures with; None without v1a."""
        return public_key(self.signing_key) if self.uses_v1a and self.signing_key else None

    @property
    def uses_oauth2(self) -> bool:
        return bool(self.oauth2_token_url)

    def overlap_active(self, now: dt.datetime | None = None) -> bool:
        """True while the previous secret and key still sign (the rotation overlap)."""
        expires = self.previous_secret_expires_at
        return expires is not None and expires > (now or timezone.now())

    def signing_secrets(self, now: dt.datetime | None = None) -> list[str]:
        """The keys that sign a delivery now, as `deliveries.signing` takes them: the `whsec_`
        secrets for v1 and the `whsk_` private keys for v1a, current first, each previous one
        while its rotation overlap lasts."""
        overlap = self.overlap_active(now)
        keys = []
        if self.uses_v1:
            keys.append(self.secret)
            if overlap and self.previous_secret:
                keys.append(self.previous_secret)
        if self.uses_v1a and self.signing_key:
            keys.append(self.signing_key)
            if overlap and self.previous_signing_key:
                keys.append(self.previous_signing_key)
        return keys
