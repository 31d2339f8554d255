from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from rest_framework import serializers

from .matching import is_valid_filter
from .models import EventType, Subscription
from .netguard import BlockedDestination, resolve_destination


class EventTypeSerializer(serializers.ModelSerializer):
    class Meta:
        model = EventType
        fields = ["name", "description", "schema", "created_at"]
        read_only_fields = ["created_at"]


class SubscriptionSerializer(serializers.ModelSerializer):
    """A subscription as its owner sees it; the secret is never part of it."""

    class Meta:
        model = Subscription
        fields = [
            "id",
            "url",
            "description",
            "event_types",
            "is_active",
            "disabled_reason",
            "payload_format",
            "headers",
            "rate_limit",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "disabled_reason", "created_at", "updated_at"]

    def validate_url(self, value: str) -> str:
        try:
            resolve_destination(value)
        except BlockedDestination as exc:
            raise serializers.ValidationError(str(exc)) from exc
        return value

    def validate_event_types(self, value: Any) -> list[str]:
        if not isinstance(value, list) or not value:
            raise serializers.ValidationError(_("A non-empty list of event type filters."))
        for item in value:
            if not isinstance(item, str) or not is_valid_filter(item):
                raise serializers.ValidationError(
                    _("%(item)r is not an event type name, 'prefix.*' or '*'.") % {"item": item}
                )
        return list(dict.fromkeys(value))


class SubscriptionCreatedSerializer(SubscriptionSerializer):
    """The answer to a create: the only time the secret is shown."""

    secret = serializers.CharField(read_only=True)

    class Meta(SubscriptionSerializer.Meta):
        fields = [*SubscriptionSerializer.Meta.fields, "secret"]
