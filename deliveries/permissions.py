from rest_framework import permissions
from rest_framework.request import Request

from webhooks_core.access import TenantModelPermissions, has_any_perm


class CanPublish(TenantModelPermissions):
    """Publishing needs `deliveries.add_event` (it names any tenant); reading the event log
    follows the tenant rules: a tenant's users read its events (and broadcasts), the
    `view_event` or `change_event` permission reads every tenant's."""

    def has_permission(self, request: Request, view: object) -> bool:
        if request.method not in permissions.SAFE_METHODS:
            return has_any_perm(request.user, ["deliveries.add_event"])
        return super().has_permission(request, view)
