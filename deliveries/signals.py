"""Extension points, sent after the change they announce has been committed.

- `delivery_succeeded(sender=Delivery, delivery, attempt)`: an attempt got a 2xx answer.
- `delivery_failed(sender=Delivery, delivery, attempt, reason)`: the delivery ended `failed`
  (non-retryable answer or schedule exhausted).

`subscription_disabled` and `subscription_enabled` live in `subscriptions.signals`; they are
re-exported here so that every outcome signal can be imported from one place.
"""

from django.dispatch import Signal

from subscriptions.signals import subscription_disabled, subscription_enabled

delivery_succeeded = Signal()
delivery_failed = Signal()

__all__ = [
    "delivery_failed",
    "delivery_succeeded",
    "subscription_disabled",
    "subscription_enabled",
]
