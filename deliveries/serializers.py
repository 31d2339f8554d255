from __future__ import annotations

from rest_framework import serializers

from .models import Delivery, DeliveryAttempt, DeliveryStatus, Event


class PublishSerializer(serializers.Serializer):
    type = serializers.CharField(max_length=255)
    data = serializers.JSONField()
    idempotency_key = serializers.CharField(max_length=255, required=False, allow_blank=False)


class PublishedSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    type = serializers.CharField()
    created_at = serializers.DateTimeField()
    deliveries = serializers.IntegerField(help_text="Subscriptions the event was fanned out to.")
    duplicate = serializers.BooleanField(
        help_text="True when the idempotency key was seen before and this is the first event."
    )


class AttemptSerializer(serializers.ModelSerializer):
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


class DeliverySerializer(serializers.ModelSerializer):
    event_type = serializers.CharField(source="event.type", read_only=True)

    class Meta:
        model = Delivery
        fields = [
            "id",
            "event",
            "event_type",
            "subscription",
            "status",
            "attempts",
            "next_attempt_at",
            "last_status_code",
            "last_error",
            "delivered_at",
            "created_at",
        ]


class DeliveryDetailSerializer(DeliverySerializer):
    attempt_set = AttemptSerializer(many=True, read_only=True)

    class Meta(DeliverySerializer.Meta):
        fields = [*DeliverySerializer.Meta.fields, "attempt_set"]


class EventSerializer(serializers.ModelSerializer):
    class Meta:
        model = Event
        fields = ["id", "type", "data", "idempotency_key", "created_at", "fanned_out_at"]


class EventDetailSerializer(EventSerializer):
    deliveries = DeliverySerializer(many=True, read_only=True)

    class Meta(EventSerializer.Meta):
        fields = [*EventSerializer.Meta.fields, "deliveries"]


class DeliveryFilterSerializer(serializers.Serializer):
    """Query parameters of the delivery list, validated so a bad value is a 400, not a 500."""

    status = serializers.ChoiceField(choices=DeliveryStatus.choices, required=False)
    subscription = serializers.UUIDField(required=False)
    event = serializers.UUIDField(required=False)
    type = serializers.CharField(max_length=255, required=False)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)

    LOOKUPS = {
        "status": "status",
        "subscription": "subscription_id",
        "event": "event_id",
        "type": "event__type",
        "since": "created_at__gte",
        "until": "created_at__lt",
    }

    def lookups(self) -> dict:
        return {self.LOOKUPS[name]: value for name, value in self.validated_data.items()}
