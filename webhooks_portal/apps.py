from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PortalConfig(AppConfig):
    name = "webhooks_portal"
    # The package and the label carry the same prefix as every importable name here: host
    # projects often have an app named "portal", and two apps cannot share a
    # label. Templates and static files live under `webhooks_portal/` for the same reason.
    label = "webhooks_portal"
    verbose_name = _("Webhooks portal")

    def ready(self) -> None:
        from django.core import checks

        from webhooks_core.apidocs import register_api

        from .checks import check_portal_settings

        checks.register(check_portal_settings, checks.Tags.compatibility)
        # POST /api/tenants/{key}/portal-link/ joins the one API include (webhooks_core.urls).
        register_api("webhooks_portal.api_urls")
