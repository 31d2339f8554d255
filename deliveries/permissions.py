from rest_framework import permissions
from rest_framework.request import Request


class CanPublish(permissions.BasePermission):
    """Reading the event log needs staff; publishing needs `deliveries.add_event`."""

    def has_permission(self, request: Request, view: object) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if request.method in permissions.SAFE_METHODS:
            return bool(user.is_staff)
        return bool(user.has_perm("deliveries.add_event"))
