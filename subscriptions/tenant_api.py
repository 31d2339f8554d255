"""GET /api/tenants/ and /api/tenants/{key}/: tenants with their limits, and the figures other
apps add to them (the pipeline's 24 h health and deliveries in flight).

For operators and the SaaS backend: it needs the `view_tenant` (or `change_tenant`) model
permission, whatever the user's own tenant. The registry knows nothing of the pipeline: the
pipeline adds its figures with `register_tenant_figure()` from its `AppConfig.ready()`, each a
field of the answer computed for a whole page of tenants at once (one query per figure, not per
row).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import permissions, serializers, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from webhooks_core import wire
from webhooks_core.access import READ, has_any_perm, model_perms
from webhooks_core.api import APIDefaults

from .models import Tenant


@dataclass(frozen=True)
class TenantFigure:
    """A read-only field another app adds to the tenants API.

    - `name`: the field's name in the answer;
    - `schema`: a serializer class (or field instance) describing the value, for the OpenAPI
      schema and to render it (a serializer class renders `compute`'s value through itself);
    - `compute`: tenant keys -> {key: value}, called once per answer with the page's keys; a
      key missing from the result renders as `default`;
    - `detail_only`: shown by GET /api/tenants/{key}/ only (costly per tenant).
    """

    name: str
    schema: type[serializers.Serializer] | serializers.Field
    compute: Callable[[Sequence[str]], Mapping[str, Any]]
    default: Any = None
    detail_only: bool = False


_figures: dict[str, TenantFigure] = {}


def register_tenant_figure(figure: TenantFigure) -> None:
    """Add `figure` to the tenants API (list and detail, or detail only). Call it from an
    `AppConfig.ready()`; registering a name again replaces the earlier figure."""
    _figures[figure.name] = figure


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


class _FigureField(serializers.Field):
    """One registered figure of one tenant, read from the values computed for the page."""

    def __init__(self, figure: TenantFigure) -> None:
        self.figure = figure
        super().__init__(source="pk", read_only=True)

    def to_representation(self, key: str) -> Any:
        value = self.context["figures"][self.figure.name].get(key, self.figure.default)
        if isinstance(self.figure.schema, type):
            return self.figure.schema(value).data
        return self.figure.schema.to_representation(value)


def _figure_field(figure: TenantFigure) -> _FigureField:
    """A `_FigureField` whose OpenAPI shape is the figure's schema."""
    shaped = extend_schema_field(figure.schema)(
        type(f"{figure.name.title().replace('_', '')}FigureField", (_FigureField,), {})
    )
    return shaped(figure)


def figures_for(detail: bool) -> list[TenantFigure]:
    """The registered figures a list (`detail=False`) or a detail answer shows."""
    return [f for f in _figures.values() if detail or not f.detail_only]


class TenantSerializer(wire.ModelSerializer):
    limits = serializers.SerializerMethodField()
    detail = False

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
            "created_at",
        ]

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        for figure in figures_for(self.detail):
            fields[figure.name] = _figure_field(figure)
        return fields

    @extend_schema_field(TenantLimitsSerializer)
    def get_limits(self, tenant: Tenant) -> dict[str, Any]:
        """The limits in force: the row's overrides, else the WEBHOOKS defaults."""
        return {
            "subscriptions": tenant.subscription_limit,
            "in_flight": tenant.in_flight_limit,
            "rate": tenant.rate_default,
        }


class TenantDetailSerializer(TenantSerializer):
    detail = True


class TenantViewSet(APIDefaults, viewsets.ReadOnlyModelViewSet):
    """Tenants with their limits and figures, for users with the `view_tenant` permission."""

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
        figures = {f.name: f.compute(keys) for f in figures_for(detail=not many)}
        context = {**self.get_serializer_context(), "figures": figures}
        return self.get_serializer_class()(tenants, many=many, context=context).data
