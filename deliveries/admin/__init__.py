"""The deliveries admin, by job: `history` (events, deliveries and attempts, read-only),
`notices` (operational notices, read-only), `dashboard` (its own admin page) and
`subscription_extension` and `tenant_extension` (what the pipeline adds to the registry's
subscription and tenant admins). The admin's autodiscovery imports this package: it registers
the deliveries' own models and the two extensions, and never replaces another app's admin.
"""

from subscriptions.admin import SubscriptionAdmin, TenantAdmin

from . import history, notices
from .subscription_extension import PipelineExtension
from .tenant_extension import TenantHealthExtension

SubscriptionAdmin.register_extension(PipelineExtension())
TenantAdmin.register_extension(TenantHealthExtension())

__all__ = ["history", "notices"]
