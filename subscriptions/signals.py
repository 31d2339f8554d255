"""Signals of the subscription registry, sent after the change has been committed.

- `subscription_disabled(sender=Subscription, subscription, reason)`: disabled by the pipeline
  (410 Gone, a dead endpoint) or by a person (admin, API). The deliveries app listens to discard
  what was waiting for it.
- `subscription_enabled(sender=Subscription, subscription)`: enabled again.
"""

from django.dispatch import Signal

subscription_disabled = Signal()
subscription_enabled = Signal()
