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
        from django.core import checks

        from . import schema  # noqa: F401 - registers the OpenAPI authentication extensions
        from .checks import check_encryption_keys, check_webhooks_settings

        checks.register(check_webhooks_settings, checks.Tags.compatibility)
        checks.register(check_encryption_keys, checks.Tags.security, deploy=True)
