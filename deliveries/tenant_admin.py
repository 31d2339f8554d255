"""The admin's tenant list with the health of each tenant's endpoints (24 h), replacing the
registry's plain one: the figures come from deliveries and attempts, which the registry does
not know. Imported by `deliveries.admin`."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from subscriptions.admin import TenantAdmin as BaseTenantAdmin
from subscriptions.models import Subscription, Tenant

from . import charts
from .services.health import TenantHealth, tenant_health


class TenantAdmin(BaseTenantAdmin):
    """Tenants with their endpoints' health, computed for the page in three grouped queries."""

    list_display = [
        "key",
        "name",
        "endpoints",
        "failing",
        "success_rate",
        "p95_latency",
        "unfinished",
        "limits",
    ]

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        cl = getattr(response, "context_data", {}).get("cl")
        if cl is not None:
            # The page's objects, evaluated once, carry their figures into the template.
            page = list(cl.result_list)
            figures = tenant_health([tenant.pk for tenant in page])
            for tenant in page:
                tenant.webhooks_health = figures.get(tenant.pk)
        return response

    @staticmethod
    def _health(obj: Tenant) -> TenantHealth:
        return getattr(obj, "webhooks_health", None) or TenantHealth()

    def _subscriptions_url(self, obj: Tenant, **params: str) -> str:
        opts = Subscription._meta
        url = reverse(f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_changelist")
        query = "&".join(f"{name}={value}" for name, value in {"tenant": obj.pk, **params}.items())
        return f"{url}?{query}"

    @admin.display(description=_("endpoints (active)"))
    def endpoints(self, obj: Tenant) -> str:
        figures = self._health(obj)
        return format_html(
            '<a href="{}">{} ({})</a>',
            self._subscriptions_url(obj),
            figures.subscriptions,
            figures.active_subscriptions,
        )

    @admin.display(description=_("failing"))
    def failing(self, obj: Tenant) -> str:
        count = self._health(obj).failing_subscriptions
        if not count:
            return "0"
        return format_html('<b style="color:#c62828">{}</b>', count)

    @admin.display(description=_("success 24 h"))
    def success_rate(self, obj: Tenant) -> str:
        figures = self._health(obj)
        return charts.success_rate_html(figures.succeeded_24h, figures.attempts_24h)

    @admin.display(description=_("p95 24 h"))
    def p95_latency(self, obj: Tenant) -> str:
        figures = self._health(obj)
        return charts.p95_text(figures.p95_ms, figures.p95_over)

    @admin.display(description=_("waiting deliveries"))
    def unfinished(self, obj: Tenant) -> int:
        return self._health(obj).unfinished_deliveries

    @admin.display(description=_("limits (subscriptions / in flight)"))
    def limits(self, obj: Tenant) -> str:
        def shown(value: int | None) -> str:
            return "∞" if value is None else str(value)

        return f"{shown(obj.subscription_limit)} / {shown(obj.in_flight_limit)}"


admin.site.unregister(Tenant)
admin.site.register(Tenant, TenantAdmin)
