"""Signals of the subscription registry, sent after the change has been committed.

- `subscription_disabled(sender=Subscription, subscription, reason)`: disabled by the pipeline
  (410 Gone, a dead endpoint) or by a person (admin, API). The deliveries app listens to discard
  what was waiting for it.
- `subscription_enabled(sender=Subscription, subscription)`: enabled again.

Other apps extend the registry's admins by registration, not by signal: see
`SubscriptionAdmin.register_extension` and `TenantAdmin.register_extension`
(subscriptions/admin.py).
"""

from django.dispatch import Signal

subscription_disabled = Signal()
subscription_enabled = Signal()
