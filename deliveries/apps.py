from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DeliveriesConfig(AppConfig):
    name = "deliveries"
    # Kept as "deliveries": the publish permission is part of the public contract
    # (`deliveries.add_event`). Tables are prefixed "webhooks_" so they cannot collide.
    label = "deliveries"
    verbose_name = _("Webhook deliveries")
    default_auto_field = "django.db.models.BigAutoField"
