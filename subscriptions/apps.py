from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SubscriptionsConfig(AppConfig):
    name = "subscriptions"
    # Not "subscriptions": billing apps of that name are common in host projects, and two apps
    # cannot share a label. Tables are prefixed "webhooks_" for the same reason.
    label = "webhook_subscriptions"
    verbose_name = _("Webhook subscriptions")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_login_failed
        from django.core import checks
        from django.db.models.signals import post_migrate
        from django.utils.module_loading import autodiscover_modules

        from webhooks_core.apidocs import register_api
        from webhooks_core.authentication import count_failed_login

        from . import schema  # noqa: F401 - registers the OpenAPI authentication extensions
        from .catalog import sync_after_migrate
        from .checks import (
            check_contracts,
            check_encryption_keys,
            check_moved_paths,
            check_webhooks_settings,
        )
        from .operators import grant_app_permissions

        # The registry's API joins the one include (webhooks_core.urls).
        register_api("subscriptions.urls")
        checks.register(check_webhooks_settings, checks.Tags.compatibility)
        checks.register(check_encryption_keys, checks.Tags.security, deploy=True)
        checks.register(check_contracts, checks.Tags.compatibility)
        checks.register(check_moved_paths, checks.Tags.compatibility)
        # Event types the host declares in code live in `webhook_events` modules of its apps,
        # imported here as the admin imports `admin` modules. No database access: the catalog
        # is written after `migrate` (post_migrate), never at start-up.
        autodiscover_modules("webhook_events")
        post_migrate.connect(sync_after_migrate, sender=self, dispatch_uid="webhooks-sync-catalog")
        # Every failed password login counts against its address and user name (the admin's
        # too); FailedLoginBackend and the API's Basic refuse logins past the budget.
        user_login_failed.connect(count_failed_login, dispatch_uid="webhooks-failed-login")
        # The "Webhooks operators" group holds this app's model permissions (operators.py).
        post_migrate.connect(
            grant_app_permissions, sender=self, dispatch_uid="webhooks-operators-subscriptions"
        )
