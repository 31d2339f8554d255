"""The deliveries admin, by job: `history` (events, deliveries and attempts, read-only),
`notices` (operational notices, read-only), `dashboard` (its own admin page) and
`subscription_extension` (what the pipeline adds to the subscription admin through
`subscriptions.signals.subscription_admin_extensions`, connected in
`DeliveriesConfig.ready()`). Importing this package registers the deliveries' own models only.
"""

from .. import tenant_admin
from . import history, notices

__all__ = ["history", "notices", "tenant_admin"]
