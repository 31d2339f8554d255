"""The pipeline's figures in the registry's tenants API (`subscriptions.tenant_api`): each
tenant's 24 h health on every answer, and its deliveries in flight right now on the detail.
Registered from `DeliveriesConfig.ready()`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rest_framework import serializers

from subscriptions.tenant_api import TenantFigure, register_tenant_figure
from webhooks_core import wire

from .services import inflight
from .services.health import TenantHealth, tenant_health


class TenantHealthSerializer(serializers.Serializer):
    subscriptions = serializers.IntegerField()
    active_subscriptions = serializers.IntegerField()
    failing_subscriptions = serializers.IntegerField(
        help_text="Active subscriptions whose latest attempts failed."
    )
    attempts_24h = serializers.IntegerField()
    succeeded_24h = serializers.IntegerField()
    success_rate = serializers.FloatField(allow_null=True, help_text="0..1; null: no attempts.")
    p95_ms = serializers.IntegerField(
        allow_null=True, help_text="95th percentile attempt duration (bucket bound), 24 h."
    )
    unfinished_deliveries = serializers.IntegerField(help_text="Pending, sending or retrying.")
    counted_up_to = wire.DateTimeField(
        allow_null=True,
        help_text=(
            "The 24 h figures count the attempts started before this moment: they are rolled "
            "up every minute, so up to about two minutes old. Null before the first roll-up."
        ),
    )


def _in_flight(keys: Sequence[str]) -> Mapping[str, int]:
    return {key: inflight.tenant_in_flight(key) for key in keys}


def register() -> None:
    """Add `health` (list and detail) and `in_flight` (detail) to the tenants API."""
    register_tenant_figure(
        TenantFigure("health", TenantHealthSerializer, tenant_health, default=TenantHealth())
    )
    register_tenant_figure(
        TenantFigure(
            "in_flight",
            serializers.IntegerField(
                read_only=True,
                help_text="Deliveries of this tenant in flight right now (counted in REDIS_URL).",
            ),
            _in_flight,
            default=0,
            detail_only=True,
        )
    )
