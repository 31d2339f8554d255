from __future__ import annotations

import json
from typing import Any

from rest_framework import serializers

from subscriptions import filterlang
from subscriptions.channels import CHANNEL_MAX_LENGTH, MAX_CHANNELS, validate_channels
from subscriptions.contracts import MAX_VERSION
from subscriptions.matching import EVENT_TYPE_MAX_LENGTH, is_valid_filter
from subscriptions.models import TENANT_KEY_MAX_LENGTH, is_valid_tenant_key
from webhooks_core import wire

from .models import ORDERING_KEY_MAX_LENGTH, Delivery, DeliveryAttempt, DeliveryStatus, Event
from .services.logsearch import (
    DeliverySearch,
    InvalidFilter,
    statuses_of,
    validated_filter,
)
from .services.ordering import ordering_key_problem
from .services.publishing import IDEMPOTENCY_KEY_MAX_LENGTH, idempotency_key_problem
from .services.replay import REPLAYABLE_STATUSES
from .services.simulation import DEFAULT_LIMIT as SIMULATION_DEFAULT_LIMIT
from .services.simulation import MAX_LIMIT as SIMULATION_MAX_LIMIT


def valid_idempotency_key(value: str) -> None:
    problem = idempotency_key_problem(value)
    if problem is not None:
        raise serializers.ValidationError(problem)


def valid_ordering_key(value: str) -> None:
    problem = ordering_key_problem(value)
    if problem is not None:
        raise serializers.ValidationError(problem)


class PublishSerializer(serializers.Serializer):
    """The body of `POST /api/events/`. `data` is checked by `validate_event` in `publish()`
    (storable JSON, depth, size, schema), the one check the Python API shares."""

    # Taken exactly (api.md: nothing is changed silently): " order.created" is refused, not
    # trimmed, as publish() refuses it.
    type = serializers.CharField(max_length=255, trim_whitespace=False)
    # The wire name (DESIGN.md). DRF's metaclass moves declared fields out of the class body,
    # so Serializer.data, which the stubs see shadowed, is untouched at run time.
    data = serializers.JSONField()  # type: ignore[assignment]
    tenant = serializers.CharField(
        max_length=TENANT_KEY_MAX_LENGTH,
        trim_whitespace=False,
        required=False,
        help_text="The tenant whose subscriptions receive the event; default: the caller's "
        "tenant, else the default tenant.",
    )
    broadcast = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Send to the matching subscriptions of every tenant.",
    )
    channels = serializers.ListField(
        child=serializers.CharField(max_length=CHANNEL_MAX_LENGTH, trim_whitespace=False),
        required=False,
        max_length=MAX_CHANNELS,
        help_text="Channel names the event carries (at most 10): subscriptions with channels "
        "receive it only if they share one; those without channels receive it anyway.",
    )
    idempotency_key = serializers.CharField(
        max_length=IDEMPOTENCY_KEY_MAX_LENGTH,
        required=False,
        allow_blank=False,
        trim_whitespace=False,
        validators=[valid_idempotency_key],
        help_text="Printable text, at most 255 characters. Send one with every event: a retry "
        "with the same key returns the first event instead of publishing twice.",
    )

    ordering_key = serializers.CharField(
        max_length=ORDERING_KEY_MAX_LENGTH,
        required=False,
        allow_blank=False,
        trim_whitespace=False,
        validators=[valid_ordering_key],
        help_text="Events with the same key (e.g. `order_1001`) reach each endpoint in publish "
        "order, the next once the previous one succeeded or ended. Printable text, at most 255 "
        "characters; not with `broadcast`.",
    )

    def validate_tenant(self, value: str) -> str:
        if not is_valid_tenant_key(value):
            raise serializers.ValidationError(
                "A tenant key is 1 to 255 letters, digits, '.', '_', ':' or '-'."
            )
        return value

    def validate(self, attrs: dict) -> dict:
        # The key may come as the `Idempotency-Key` header instead (the body wins); it obeys
        # the same rules, or a long one would reach the database and fail there.
        request = self.context.get("request")
        header = request.headers.get("Idempotency-Key") if request is not None else None
        if header and not attrs.get("idempotency_key"):
            try:
                attrs["idempotency_key"] = self.fields["idempotency_key"].run_validation(header)
            except serializers.ValidationError as exc:
                raise serializers.ValidationError({"idempotency_key": exc.detail}) from exc
        return attrs


class PublishedSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    tenant = serializers.CharField()
    type = serializers.CharField()
    created_at = wire.DateTimeField()
    deliveries = serializers.IntegerField(
        allow_null=True,
        help_text="Subscriptions the event goes to; null when it could not be counted after the "
        "event was stored (the sweep fans it out all the same).",
    )
    skipped = serializers.IntegerField(
        allow_null=True,
        help_text="Deliveries recorded as skipped for matching disabled subscriptions (not sent; "
        "replayable once they are enabled again); null when they could not be counted.",
    )
    duplicate = serializers.BooleanField(
        help_text="True when the idempotency key was seen before and this is the first event."
    )


class AttemptSerializer(wire.ModelSerializer):
    class Meta:
        model = DeliveryAttempt
        fields = [
            "number",
            "started_at",
            "duration_ms",
            "request_headers",
            "response_status",
            "response_headers",
            "response_body",
            "error_kind",
            "error",
        ]


class DeliverySerializer(wire.ModelSerializer):
    event_type = serializers.CharField(source="event.type", read_only=True)
    waiting_for = serializers.SerializerMethodField(
        help_text="Why the delivery waits without an attempt now: `endpoint_cap` (the endpoint "
        "is at its max_in_flight), `tenant_cap` (its tenant is at its in-flight cap), "
        "`ordering` (an earlier event of its ordering key has not ended), or null."
    )
    endpoint_deleted = serializers.BooleanField(
        source="subscription_deleted",
        read_only=True,
        help_text="The endpoint was deleted; this history stays until retention prunes it.",
    )

    class Meta:
        model = Delivery
        fields = [
            "id",
            "event",
            "event_type",
            "subscription",
            "endpoint_deleted",
            "status",
            "waiting_for",
            "attempts",
            "next_attempt_at",
            "last_status_code",
            "last_error",
            "delivered_at",
            "version",
            "ordering_key",
            "created_at",
        ]

    def get_waiting_for(self, delivery: Delivery) -> str | None:
        return delivery.waiting_for or None


class DeliveryDetailSerializer(DeliverySerializer):
    attempt_set = AttemptSerializer(many=True, read_only=True)

    class Meta(DeliverySerializer.Meta):
        fields = [*DeliverySerializer.Meta.fields, "attempt_set"]


class EventSerializer(wire.ModelSerializer):
    class Meta:
        model = Event
        fields = [
            "id",
            "tenant",
            "broadcast",
            "type",
            "version",
            "data",
            "channels",
            "idempotency_key",
            "ordering_key",
            "ordering_seq",
            "created_at",
            "fanned_out_at",
        ]


class EventDetailSerializer(EventSerializer):
    deliveries = DeliverySerializer(many=True, read_only=True)

    class Meta(EventSerializer.Meta):
        fields = [*EventSerializer.Meta.fields, "deliveries"]


class CommaListField(serializers.ListField):
    """A list given as JSON, as repeated form fields, or as one comma-separated string."""

    def to_internal_value(self, data: Any) -> list[Any]:
        if isinstance(data, str):
            data = [data]
        if isinstance(data, list | tuple):
            data = [part.strip() for v in data for part in str(v).split(",") if part.strip()]
        return super().to_internal_value(data)


def search_input(data: Any) -> dict[str, Any]:
    """A request's query parameters (a QueryDict: `status` repeated or comma-separated) or JSON
    body (`status` a string or a list) as the plain dict `DeliverySearchSerializer` reads."""
    if hasattr(data, "getlist"):
        plain: dict[str, Any] = {key: data.get(key) for key in data}
        if "status" in data:
            plain["status"] = data.getlist("status")
        return plain
    return dict(data) if isinstance(data, dict) else {}


class DeliverySearchSerializer(serializers.Serializer):
    """A search of the delivery log (`GET /api/deliveries/` query parameters, the body of
    `POST /api/deliveries/retry/`), validated so a bad value is a 400 naming the field, never a
    500. `context["all_tenants"]`: whether the user acts across tenants (may name `tenant`);
    `context["tenant"]`: a tenant user's own tenant."""

    status = CommaListField(
        child=serializers.ChoiceField(choices=DeliveryStatus.choices),
        required=False,
        allow_empty=False,
        help_text="One status or several (a list, repeated, or comma-separated).",
    )
    response_status = serializers.IntegerField(
        min_value=100, max_value=599, required=False, help_text="The last HTTP status answered."
    )
    since = wire.DateTimeField(required=False, help_text="Created at or after (with an offset).")
    until = wire.DateTimeField(required=False, help_text="Created before (with an offset).")
    type = serializers.CharField(
        max_length=EVENT_TYPE_MAX_LENGTH,
        required=False,
        trim_whitespace=False,
        help_text="Event type: an exact name, `prefix.*` or `*`, as endpoints subscribe.",
    )
    tenant = serializers.CharField(
        max_length=TENANT_KEY_MAX_LENGTH,
        required=False,
        trim_whitespace=False,
        help_text="The endpoints' tenant (users with model permissions).",
    )
    subscription = serializers.UUIDField(required=False)
    event = serializers.UUIDField(required=False)
    filter = serializers.JSONField(
        required=False,
        help_text="A JSON filter over the event (docs/filters.md); URL-encoded JSON in a query.",
    )

    def validate_type(self, value: str) -> str:
        if not is_valid_filter(value):
            raise serializers.ValidationError(
                "Give an event type (`invoice.paid`), a prefix wildcard (`invoice.*`) or `*`."
            )
        return value

    def validate_tenant(self, value: str) -> str:
        if not is_valid_tenant_key(value):
            raise serializers.ValidationError(
                "A tenant key is 1 to 255 letters, digits, '.', '_', ':' or '-'."
            )
        if not self.context.get("all_tenants") and value != self.context.get("tenant"):
            raise serializers.ValidationError(
                "Only users with model permissions search other tenants' deliveries."
            )
        return value

    def validate_filter(self, value: Any) -> dict[str, Any]:
        if isinstance(value, str):  # a query parameter: URL-encoded JSON
            try:
                value = json.loads(value)
            except ValueError as exc:
                raise serializers.ValidationError(f"Not JSON: {exc}.") from exc
        try:
            return validated_filter(value)
        except InvalidFilter as exc:
            raise serializers.ValidationError(exc.messages) from exc

    def validate(self, attrs: dict) -> dict:
        since, until = attrs.get("since"), attrs.get("until")
        if since and until and since >= until:
            raise serializers.ValidationError({"until": ["Must be after `since`."]})
        return attrs

    def search(self) -> DeliverySearch:
        """The validated criteria."""
        data = self.validated_data
        return DeliverySearch(
            statuses=statuses_of(data.get("status") or ()),
            response_status=data.get("response_status"),
            since=data.get("since"),
            until=data.get("until"),
            event_type=data.get("type"),
            tenant=data.get("tenant"),
            subscription=data.get("subscription"),
            event=data.get("event"),
            filter=data.get("filter"),
        )


class BulkRetryRequestSerializer(DeliverySearchSerializer):
    """The body of `POST /api/deliveries/retry/`: a search, and `dry_run`."""

    dry_run = serializers.BooleanField(
        required=False, default=False, help_text="Only count the matches; queue nothing."
    )


class BulkRetryAnswerSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="Deliveries matching the search.")
    queued = serializers.IntegerField(
        required=False,
        help_text="Deliveries given one more attempt (absent for a dry run); the others were "
        "already queued or being sent, or their endpoint is disabled.",
    )


class ReplayRequestSerializer(serializers.Serializer):
    since = wire.DateTimeField(help_text="Deliveries created at or after this time.")
    until = wire.DateTimeField(
        required=False, help_text="Deliveries created before this time; default now."
    )
    status = CommaListField(
        child=serializers.ChoiceField(choices=list(REPLAYABLE_STATUSES)),
        required=False,
        allow_empty=False,
        help_text="Statuses to replay; default skipped, discarded and failed (what an outage "
        "leaves undelivered). `retrying` sends now what waits for a later attempt.",
    )

    def validate(self, attrs: dict) -> dict:
        if attrs.get("until") and attrs["since"] >= attrs["until"]:
            raise serializers.ValidationError({"until": ["Must be after `since`."]})
        return attrs


class ReplayQueuedSerializer(serializers.Serializer):
    subscription = serializers.UUIDField()
    queued = serializers.IntegerField(help_text="Deliveries queued for another attempt.")
    since = wire.DateTimeField()
    until = wire.DateTimeField()
    status = serializers.ListField(child=serializers.CharField())


class RetryQueuedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    queued = serializers.BooleanField()
    attempt = serializers.IntegerField(help_text="Number of the attempt that was queued.")


class SkippedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    released = serializers.IntegerField(
        help_text="Deliveries of its ordering key released by the skip (0 or 1)."
    )


class VersionPreviewQuerySerializer(serializers.Serializer):
    type = serializers.CharField(max_length=EVENT_TYPE_MAX_LENGTH)
    version = serializers.IntegerField(min_value=1, max_value=MAX_VERSION)


class VersionPreviewSerializer(serializers.Serializer):
    type = serializers.CharField()
    version = serializers.IntegerField()
    # The wire name of the field; the stubs see it shadowing Field.source, which DRF's
    # metaclass leaves alone (declared fields are moved out of the class body).
    source = serializers.ChoiceField(  # type: ignore[assignment]
        choices=["event", "example"],
        help_text="'event': rendered from the subscription's last event of the type; "
        "'example': from the catalog's example.",
    )
    event = serializers.UUIDField(allow_null=True)
    body = serializers.JSONField(help_text="The body as the subscription would receive it.")


class EgressIPsSerializer(serializers.Serializer):
    ips = serializers.ListField(
        child=serializers.CharField(),
        help_text="Addresses (or networks) webhooks are sent from, for the receiver's allow-list.",
    )


class SimulationRequestSerializer(serializers.Serializer):
    """The body of `POST /api/subscriptions/simulate/`: a draft subscription's routing."""

    event_types = serializers.ListField(
        child=serializers.CharField(max_length=EVENT_TYPE_MAX_LENGTH, trim_whitespace=False),
        min_length=1,
        max_length=100,
        help_text="Event type names, 'prefix.*' or '*', as a subscription's.",
    )
    filter = serializers.JSONField(
        required=False,
        allow_null=True,
        help_text="A JSON filter over the event, as a subscription's (docs/filters.md).",
    )
    channels = serializers.ListField(
        child=serializers.CharField(max_length=CHANNEL_MAX_LENGTH, trim_whitespace=False),
        required=False,
        max_length=MAX_CHANNELS,
        help_text="As a subscription's: [] (the default) for events of every channel.",
    )
    limit = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=SIMULATION_MAX_LIMIT,
        default=SIMULATION_DEFAULT_LIMIT,
        help_text=f"How many of the tenant's most recent events to look at (1 to "
        f"{SIMULATION_MAX_LIMIT}; default {SIMULATION_DEFAULT_LIMIT}).",
    )
    tenant = serializers.CharField(
        max_length=TENANT_KEY_MAX_LENGTH,
        trim_whitespace=False,
        required=False,
        help_text="Whose events: users with model permissions only; default: the caller's "
        "tenant, else the default tenant.",
    )

    def validate_event_types(self, value: list[str]) -> list[str]:
        for item in value:
            if not is_valid_filter(item):
                raise serializers.ValidationError(
                    f"{item!r} is not an event type name, 'prefix.*' or '*'."
                )
        return list(dict.fromkeys(value))

    def validate_filter(self, value: Any) -> dict:
        return {} if value is None else filterlang.validate_filter(value)

    def validate_channels(self, value: list[str]) -> list[str]:
        return validate_channels(value)

    def validate_tenant(self, value: str) -> str:
        if not is_valid_tenant_key(value):
            raise serializers.ValidationError(
                "A tenant key is 1 to 255 letters, digits, '.', '_', ':' or '-'."
            )
        return value


class SimulatedEventSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    type = serializers.CharField()
    created = wire.DateTimeField(source="created_at")
    channels = serializers.ListField(child=serializers.CharField())
    data = serializers.JSONField()  # type: ignore[assignment]


class SimulationSerializer(serializers.Serializer):
    tenant = serializers.CharField()
    examined = serializers.IntegerField(help_text="How many recent events were looked at.")
    count = serializers.IntegerField(help_text="How many of them the draft would have received.")
    events = SimulatedEventSerializer(many=True, help_text="Those events, newest first.")
