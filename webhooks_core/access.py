"""Who may see and do what, tenant by tenant.

Two kinds of users:
- tenant users: `resolve_tenant(request)` names their tenant; they see and manage that
  tenant's objects and nothing else (another tenant's object answers 404, as if absent);
- users acting across tenants (the SaaS backend's token, operators): they hold the Django
  model permission for what they do, with the admin's meaning (view: `view_` or `change_`;
  create: `add_`; change: `change_`; delete: `delete_`). `is_staff` alone grants nothing.

A user with neither a tenant nor the permission gets 403 (or an empty list).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import models
from rest_framework import permissions
from rest_framework.request import Request

from .tenancy import resolve_tenant

# HTTP method → the model permission that grants it on every tenant's objects. Reading
# accepts `view` or `change`, as the admin does.
METHOD_ACTIONS = {
    "GET": ("view", "change"),
    "HEAD": ("view", "change"),
    "OPTIONS": ("view", "change"),
    "POST": ("add",),
    "PUT": ("change",),
    "PATCH": ("change",),
    "DELETE": ("delete",),
}
READ = METHOD_ACTIONS["GET"]


def model_perms(model: type[models.Model], actions: tuple[str, ...]) -> list[str]:
    """`app_label.<action>_<model>` for each action."""
    meta = model._meta
    return [f"{meta.app_label}.{action}_{meta.model_name}" for action in actions]


def has_any_perm(user: Any, perms: list[str]) -> bool:
    """True if the active `user` holds one of `perms` (superusers hold them all)."""
    if not (user and user.is_authenticated and user.is_active):
        return False
    return any(user.has_perm(perm) for perm in perms)


@dataclass(frozen=True)
class TenantScope:
    """What one request may reach: every tenant (`all_tenants`), one tenant (`tenant`), or
    nothing (neither)."""

    all_tenants: bool
    tenant: str | None

    @property
    def is_empty(self) -> bool:
        return not self.all_tenants and self.tenant is None

    def filter(self, queryset: Any) -> Any:
        """`queryset` narrowed to this scope; its model's QuerySet has `for_tenant(key)`."""
        return queryset if self.all_tenants else queryset.for_tenant(self.tenant)

    def allows(self, tenant_key: str) -> bool:
        return self.all_tenants or tenant_key == self.tenant


def tenant_scope(request: Any, perms: list[str]) -> TenantScope:
    """The scope of `request` for an action that `perms` (any of them) grant across tenants."""
    return TenantScope(
        all_tenants=has_any_perm(getattr(request, "user", None), perms),
        tenant=resolve_tenant(request),
    )


class TenantModelPermissions(permissions.BasePermission):
    """DRF permission for tenant-owned models: a tenant user may act on their tenant's objects;
    acting on other tenants' objects needs the model permission for the method (DRF's
    `DjangoModelPermissions` semantics, reads included, as the admin).

    The view narrows its queryset with `read_scope()`, so other tenants' objects are 404; an
    object visible through a view permission but not writable answers 403. Views name the
    model in `tenant_model`, and may map custom actions (or, in a plain view, lowercase
    methods) to permission actions in `tenant_action_perms`, e.g. {"rotate_secret":
    ("change",)}.
    """

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        return not write_scope(request, view).is_empty

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        if request.method in permissions.SAFE_METHODS:
            # Found through the view's read-scoped queryset: visible, so readable (a broadcast
            # event is readable by every tenant though it belongs to one).
            return True
        return write_scope(request, view).allows(object_tenant(obj))


def object_tenant(obj: Any) -> str:
    """The tenant key of a tenant-owned object: its own `tenant`, else its subscription's
    (deliveries belong to the tenant of the endpoint they go to)."""
    if hasattr(obj, "tenant_id"):
        return obj.tenant_id
    return obj.subscription.tenant_id


def _view_actions(request: Request, view: Any) -> tuple[str, ...]:
    # Keyed by the viewset action, or by the lowercase method for a plain view.
    mapping = getattr(view, "tenant_action_perms", {}) or {}
    method = (request.method or "GET").upper()
    for key in (getattr(view, "action", None), method.lower()):
        if key in mapping:
            return tuple(mapping[key])
    return METHOD_ACTIONS.get(method, ("change",))


def write_scope(request: Request, view: Any) -> TenantScope:
    """The scope of this request's action (its method, or the view's mapping)."""
    return tenant_scope(request, model_perms(view.tenant_model, _view_actions(request, view)))


def read_scope(request: Request, model: type[models.Model]) -> TenantScope:
    """The objects of `model` the request's user can see: reading needs `view` or `change`."""
    return tenant_scope(request, model_perms(model, READ))
