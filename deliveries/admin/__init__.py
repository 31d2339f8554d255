"""The deliveries admin, by job: `history` (events, deliveries and attempts, read-only),
`notices` (operational notices, read-only), `dashboard` (its own admin page) and
`subscription_extension` and `tenant_extension` (what the pipeline adds to the registry's
subscription and tenant admins). The admin's autodiscovery imports this package: it registers
the deliveries' own models and the two extensions, and never replaces another app's admin.

The dashboard's link sits at the top of the admin index: the default site's `index_template`
(Django's public customisation point) becomes `deliveries/admin/index.html`, which extends the
host's own "admin/index.html", but only when the host's site sets no index template of its
own; such a site includes "deliveries/admin/dashboard_link.html" where it wants the link.
"""

from django.contrib import admin

from subscriptions.admin import SubscriptionAdmin, TenantAdmin

from . import history, notices
from .subscription_extension import PipelineExtension
from .tenant_extension import TenantHealthExtension

SubscriptionAdmin.register_extension(PipelineExtension())
TenantAdmin.register_extension(TenantHealthExtension())

if admin.site.index_template is None:
    admin.site.index_template = "deliveries/admin/index.html"

__all__ = ["history", "notices"]
