"""The deliveries admin, by job: `history` (events, deliveries and attempts, read-only),
`notices` (operational notices, read-only), `dashboard` (its own admin page) and
`subscription_extension` and `tenant_extension` (what the pipeline adds to the registry's
subscription and tenant admins through `subscriptions.signals.subscription_admin_extensions`
and `tenant_admin_extensions`, connected in `DeliveriesConfig.ready()`). Importing this package
registers the deliveries' own models only: it never replaces another app's admin.
"""

from . import history, notices

__all__ = ["history", "notices"]
