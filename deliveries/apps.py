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
        from django.db.models.signals import post_delete, post_migrate, post_save

        from subscriptions.models import EventType, Subscription, Tenant
        from subscriptions.operators import grant_app_permissions
        from subscriptions.signals import (
            subscription_admin_extensions,
            subscription_disabled,
            tenant_admin_extensions,
        )

        from . import logredact
        from .checks import (
            check_celery,
            check_database_routing,
            check_pipeline_settings,
            loaded_celery_app,
        )
        from .receivers import (
            announce_notice,
            discard_for_changed_filters,
            discard_for_disabled,
            forget_limits_on_settings_change,
            forget_tenant_limit,
            notice_for_disabled,
            subscription_admin_extension,
            tenant_admin_extension,
        )
        from .schedule import register_periodic_tasks
        from .services import caches
        from .signals import endpoint_notice

        checks.register(check_pipeline_settings, checks.Tags.compatibility)
        checks.register(check_celery, checks.Tags.compatibility)
        checks.register(check_database_routing, checks.Tags.compatibility)
        # urllib3 logs subscription URLs, query string included (a token may be there).
        logredact.install()

        # The sweep, dead-endpoint disabling and pruning join the host's beat schedule: no
        # setting needed (deliveries/schedule.py). No database query here, only Celery's config.
        app = loaded_celery_app()
        if app is not None:
            register_periodic_tasks(app)

        subscription_disabled.connect(
            discard_for_disabled, dispatch_uid="deliveries-discard-for-disabled"
        )
        subscription_disabled.connect(
            notice_for_disabled, dispatch_uid="deliveries-notice-for-disabled"
        )
        endpoint_notice.connect(announce_notice, dispatch_uid="deliveries-announce-notice")
        subscription_admin_extensions.connect(
            subscription_admin_extension, dispatch_uid="deliveries-subscription-admin"
        )
        tenant_admin_extensions.connect(
            tenant_admin_extension, dispatch_uid="deliveries-tenant-admin"
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
            signal.connect(
                caches.forget_tenant, sender=Tenant, dispatch_uid=f"deliveries-tenant-{name}"
            )
            signal.connect(
                caches.forget_event_type,
                sender=EventType,
                dispatch_uid=f"deliveries-event-type-{name}",
            )
        setting_changed.connect(
            forget_limits_on_settings_change, dispatch_uid="deliveries-tenant-limit-settings"
        )
        # The "Webhooks operators" group holds this app's model permissions too.
        post_migrate.connect(
            grant_app_permissions, sender=self, dispatch_uid="webhooks-operators-deliveries"
        )
