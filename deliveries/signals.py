"""Extension points, sent after the change they announce has been committed.

- `delivery_succeeded(sender=Delivery, delivery, attempt)`: an attempt got a 2xx answer.
- `delivery_failed(sender=Delivery, delivery, attempt, reason)`: the delivery ended `failed`
  (non-retryable answer or schedule exhausted).
- `subscription_disabled(sender=Subscription, subscription, reason)`: the subscription was
  disabled by the pipeline (410 Gone, dead endpoint) or by an operator.
"""

from django.dispatch import Signal

delivery_succeeded = Signal()
delivery_failed = Signal()
subscription_disabled = Signal()
