"""The portal in the tenant admin: an action that revokes the selected tenants' portal links
and sessions (`webhooks_portal.access.revoke`), added with `TenantAdmin.register_extension` when the
admin imports this module, rather than by replacing the registry's tenant admin."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from subscriptions.admin import TenantAdmin, TenantAdminExtension

from . import access


@admin.action(
    description=_("Revoke portal links and sessions of selected tenants"),
    permissions=["change"],
)
def revoke_portal_access(model_admin: Any, request: HttpRequest, queryset: QuerySet) -> None:
    """End the selected tenants' open portal sessions and their unused links."""
    closed = sum(access.revoke(key) for key in queryset.values_list("pk", flat=True))
    model_admin.message_user(
        request,
        ngettext(
            "%(count)d portal link or session revoked.",
            "%(count)d portal links and sessions revoked.",
            closed,
        )
        % {"count": closed},
        messages.SUCCESS,
    )


class PortalTenantExtension(TenantAdminExtension):
    actions = (revoke_portal_access,)


TenantAdmin.register_extension(PortalTenantExtension())
