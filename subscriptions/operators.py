"""The "Webhooks operators" group: the one step that gives a single-tenant project's operators
and backend users what logging in no longer grants.

Access is closed by default (shared/DESIGN.md, "Tenants"): the reference resolver puts nobody
in a tenant unless an explicit "tenant:<key>" group says so, and a user with no tenant reaches
only what Django model permissions grant. Each app adds every model permission of its own
models (view, add, change, delete) to this group after `migrate`, so putting a user (or the
user behind the backend's API token) into it is the documented way to make them an operator.
"""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db import DEFAULT_DB_ALIAS

# The group's name; docs/tenants.md and the README tell operators to use it.
OPERATORS_GROUP = "Webhooks operators"


def grant_app_permissions(
    app_config: AppConfig, using: str = DEFAULT_DB_ALIAS, **kwargs: Any
) -> None:
    """`post_migrate` receiver: create the operators group if missing and add every model
    permission of `app_config`'s models to it (idempotent; removes nothing an admin added).

    Runs after `django.contrib.auth`'s own receiver, which creates the permissions, since auth
    is installed (and its receiver connected) before the apps that use it.
    """
    from django.contrib.auth.models import Group, Permission
    from django.contrib.contenttypes.models import ContentType

    models = list(app_config.get_models())
    if not models:
        return
    types = ContentType.objects.db_manager(using).get_for_models(*models).values()
    perms = Permission.objects.using(using).filter(content_type__in=[t.pk for t in types])
    group, _ = Group.objects.using(using).get_or_create(name=OPERATORS_GROUP)
    group.permissions.add(*perms)
