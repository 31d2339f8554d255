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

        from subscriptions import reenable
        from webhooks_core.apidocs import register_api

        from . import logredact, receivers, tenant_figures
        from .checks import (
            check_celery,
            check_database_routing,
            check_pipeline_settings,
            loaded_celery_app,
        )
        from .schedule import register_periodic_tasks
        from .services import replay

        # The pipeline's API joins the one include (webhooks_core.urls), and its health
        # figures the registry's tenants API.
        register_api("deliveries.urls")
        tenant_figures.register()
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

        # Every signal receiver of the app, in one place (deliveries/receivers.py). The admin
        # extensions register themselves when the admin imports deliveries.admin.
        receivers.connect()
        # The enabling PATCH reports what the outage held back (subscriptions/reenable.py: the
        # registry calls this without importing the pipeline).
        reenable.register(replay.reenable_report)
        # The "Webhooks operators" group holds this app's model permissions too.
        from django.db.models.signals import post_migrate

        from subscriptions.operators import grant_app_permissions

        post_migrate.connect(
            grant_app_permissions, sender=self, dispatch_uid="webhooks-operators-deliveries"
        )
