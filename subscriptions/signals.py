"""Signals of the subscription registry, sent after the change has been committed.

- `subscription_disabled(sender=Subscription, subscription, reason)`: disabled by the pipeline
  (410 Gone, a dead endpoint) or by a person (admin, API). The deliveries app listens to discard
  what was waiting for it.
- `subscription_enabled(sender=Subscription, subscription)`: enabled again.
- `subscription_deleted(sender=Subscription, subscription)`: deleted (API, admin, portal):
  the row stays, without secrets, for its history. Sent inside the deleting transaction (the
  one exception), so the deliveries app's discarding of what waited commits with the delete.

And one for the admin:

- `subscription_admin_extensions(sender=SubscriptionAdmin class, model_admin)`: asked whenever
  the subscription admin builds its columns, actions, URLs and change-form links. A receiver
  returns a `subscriptions.admin.SubscriptionAdminExtension` (or None). Another app extends
  the subscription admin this way, from its `AppConfig.ready()`, instead of replacing it: the
  deliveries app adds health columns, replay and test events.
- `tenant_admin_extensions(sender=TenantAdmin class, model_admin)`: the same for the tenant
  admin; a receiver returns a `subscriptions.admin.TenantAdminExtension` (or None). The
  deliveries app adds each tenant's endpoint health.
"""

from django.dispatch import Signal

subscription_disabled = Signal()
subscription_enabled = Signal()
subscription_deleted = Signal()
subscription_admin_extensions = Signal()
tenant_admin_extensions = Signal()
