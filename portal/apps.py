from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PortalConfig(AppConfig):
    name = "portal"
    # Not "portal": host projects often have an app of that name, and two apps cannot share a
    # label. Templates and static files live under `webhooks_portal/` for the same reason.
    label = "webhooks_portal"
    verbose_name = _("Webhooks portal")

    def ready(self) -> None:
        from django.core import checks

        from deliveries.apidocs import document_urlconf

        from .checks import check_portal_settings

        checks.register(check_portal_settings, checks.Tags.compatibility)
        # POST /api/tenants/{key}/portal-link/ in the API's schema, where the host mounted it.
        document_urlconf("portal.api_urls")
