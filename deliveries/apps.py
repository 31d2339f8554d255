from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DeliveriesConfig(AppConfig):
    name = "deliveries"
    # Kept as "deliveries": the publish permission is part of the public contract
    # (`deliveries.add_event`). Tables are prefixed "webhooks_" so they cannot collide.
    label = "deliveries"
    verbose_name = _("Webhook deliveries")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core import checks
        from django.core.signals import setting_changed
        from django.db.models.signals import post_delete, post_save

        from subscriptions.models import Subscription, Tenant
        from subscriptions.signals import subscription_disabled

        from . import logredact
        from .checks import check_celery
        from .receivers import (
            discard_for_changed_filters,
            discard_for_disabled,
            forget_limits_on_settings_change,
            forget_tenant_limit,
        )

        checks.register(check_celery, checks.Tags.compatibility)
        # urllib3 logs subscription URLs, query string included (a token may be there).
        logredact.install()

        subscription_disabled.connect(
            discard_for_disabled, dispatch_uid="deliveries-discard-for-disabled"
        )
        post_save.connect(
            discard_for_changed_filters,
            sender=Subscription,
            dispatch_uid="deliveries-discard-for-changed-filters",
        )
        for name, signal in (("save", post_save), ("delete", post_delete)):
            signal.connect(
                forget_tenant_limit, sender=Tenant, dispatch_uid=f"deliveries-tenant-limit-{name}"
            )
        setting_changed.connect(
            forget_limits_on_settings_change, dispatch_uid="deliveries-tenant-limit-settings"
        )
