"""The tenant admin as seen by the pipeline: the health of each tenant's endpoints (24 h).

The registry's tenant admin (subscriptions/admin.py) knows nothing of deliveries and stays
registered as its app defines it; `TenantHealthExtension` adds its columns with
`TenantAdmin.register_extension` (in deliveries/admin/__init__.py).
The figures come from deliveries and attempts, computed for the page in three grouped queries.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from subscriptions.admin import TenantAdmin, TenantAdminExtension
from subscriptions.models import Subscription, Tenant

from .. import charts
from ..services.health import TenantHealth, tenant_health


def _health(obj: Tenant) -> TenantHealth:
    return getattr(obj, "webhooks_health", None) or TenantHealth()


@admin.display(description=_("endpoints (active)"))
def endpoints(obj: Tenant) -> str:
    figures = _health(obj)
    url = getattr(obj, "webhooks_subscriptions_url", "")
    shown = f"{figures.subscriptions} ({figures.active_subscriptions})"
    return format_html('<a href="{}">{}</a>', url, shown) if url else shown


@admin.display(description=_("failing"))
def failing(obj: Tenant) -> str:
    count = _health(obj).failing_subscriptions
    if not count:
        return "0"
    return format_html('<b style="color:#c62828">{}</b>', count)


@admin.display(description=_("success 24 h"))
def success_rate(obj: Tenant) -> str:
    figures = _health(obj)
    return charts.success_rate_html(figures.succeeded_24h, figures.attempts_24h)


@admin.display(description=_("p95 24 h"))
def p95_latency(obj: Tenant) -> str:
    figures = _health(obj)
    return charts.p95_text(figures.p95_ms, figures.p95_over)


@admin.display(description=_("waiting deliveries"))
def unfinished(obj: Tenant) -> int:
    return _health(obj).unfinished_deliveries


class TenantHealthExtension(TenantAdminExtension):
    """Each tenant's endpoints (with a link to them), failing ones, success rate and p95 over
    24 hours, and deliveries waiting."""

    list_display = (endpoints, failing, success_rate, p95_latency, unfinished)

    def prepare_page(self, model_admin: TenantAdmin, request: HttpRequest, page: list) -> None:
        figures = tenant_health([tenant.pk for tenant in page])
        opts = Subscription._meta
        changelist = reverse(
            f"{model_admin.admin_site.name}:{opts.app_label}_{opts.model_name}_changelist"
        )
        for tenant in page:
            tenant.webhooks_health = figures.get(tenant.pk)
            tenant.webhooks_subscriptions_url = f"{changelist}?{urlencode({'tenant': tenant.pk})}"
