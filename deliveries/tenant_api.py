"""GET /api/tenants/ and /api/tenants/{key}/: tenants with their limits and 24 h health.

For operators and the SaaS backend: it needs the `view_tenant` (or `change_tenant`) model
permission, whatever the user's own tenant. It lives in the pipeline, not in the registry,
because the health figures come from deliveries and attempts.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import permissions, serializers, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from subscriptions import wire
from subscriptions.access import READ, has_any_perm, model_perms
from subscriptions.api import APIDefaults
from subscriptions.models import Tenant

from .conf import webhook_settings
from .services import inflight
from .services.health import TenantHealth, tenant_health


class CanViewTenants(permissions.BasePermission):
    """`webhook_subscriptions.view_tenant` or `change_tenant`, as the admin's tenant list."""

    def has_permission(self, request: Request, view: object) -> bool:
        return has_any_perm(request.user, model_perms(Tenant, READ))


class TenantLimitsSerializer(serializers.Serializer):
    subscriptions = serializers.IntegerField(
        allow_null=True, help_text="Most subscriptions; null: no limit."
    )
    in_flight = serializers.IntegerField(
        allow_null=True, help_text="Most deliveries in flight at once; null: no cap."
    )
    rate = serializers.FloatField(
        allow_null=True,
        help_text="Events per second to each endpoint that sets no rate of its own; null: none.",
    )


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


class TenantSerializer(wire.ModelSerializer):
    limits = serializers.SerializerMethodField()
    health = serializers.SerializerMethodField()

    class Meta:
        model = Tenant
        fields = [
            "key",
            "name",
            "contact_email",
            "max_subscriptions",
            "max_in_flight",
            "max_rate",
            "limits",
            "health",
            "created_at",
        ]

    @extend_schema_field(TenantLimitsSerializer)
    def get_limits(self, tenant: Tenant) -> dict[str, Any]:
        """The limits in force: the row's overrides, else the WEBHOOKS defaults."""
        return {
            "subscriptions": tenant.subscription_limit,
            "in_flight": tenant.in_flight_limit,
            "rate": tenant.max_rate if tenant.max_rate else webhook_settings.MAX_RATE,
        }

    @extend_schema_field(TenantHealthSerializer)
    def get_health(self, tenant: Tenant) -> dict[str, Any]:
        health = self.context["health"].get(tenant.pk, TenantHealth())
        return TenantHealthSerializer(health).data


class TenantDetailSerializer(TenantSerializer):
    in_flight = serializers.SerializerMethodField(
        help_text="Deliveries of this tenant in flight right now (counted in REDIS_URL)."
    )

    class Meta(TenantSerializer.Meta):
        fields = [*TenantSerializer.Meta.fields, "in_flight"]

    def get_in_flight(self, tenant: Tenant) -> int:
        return inflight.tenant_in_flight(tenant.pk)


class TenantViewSet(APIDefaults, viewsets.ReadOnlyModelViewSet):
    """Tenants with their limits and health, for users with the `view_tenant` permission."""

    queryset = Tenant.objects.order_by("key")
    permission_classes = [CanViewTenants]
    lookup_field = "key"
    lookup_value_regex = r"[A-Za-z0-9._:-]{1,255}"

    def get_serializer_class(self) -> type[BaseSerializer[Any]]:
        return TenantDetailSerializer if self.action == "retrieve" else TenantSerializer

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        tenants = list(page) if page is not None else list(self.get_queryset())
        data = self._serialize(tenants, many=True)
        return self.get_paginated_response(data) if page is not None else Response(data)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response(self._serialize(self.get_object()))

    def _serialize(self, tenants: Any, many: bool = False) -> Any:
        keys = [t.pk for t in tenants] if many else [tenants.pk]
        context = {**self.get_serializer_context(), "health": tenant_health(keys)}
        return self.get_serializer_class()(tenants, many=many, context=context).data
