"""Extension points, sent after the change they announce has been committed.

- `delivery_succeeded(sender=Delivery, delivery, attempt)`: an attempt got a 2xx answer.
- `delivery_failed(sender=Delivery, delivery, attempt, reason)`: the delivery ended `failed`
  (non-retryable answer or schedule exhausted).
- `endpoint_notice(sender=EndpointNotice, notice)`: an endpoint started failing, was disabled
  or recovered; sent once per incident and kind (`notice.kind` is `failing`, `disabled` or
  `recovered`), after the notice row is committed. `notice.subscription` is the endpoint;
  `notice.disable_at` (failing) when it will be disabled if nothing changes;
  `notice.missed_count` and `notice.missed_since` what it has not received, and
  `deliveries.services.notices.replay_query(notice)` the replay that sends it again. The
  pipeline's own receiver emails it and POSTs it to the operator URL when so configured.

`subscription_disabled` and `subscription_enabled` live in `subscriptions.signals`; they are
re-exported here so that every outcome signal can be imported from one place.
"""

from django.dispatch import Signal

from subscriptions.signals import subscription_disabled, subscription_enabled

delivery_succeeded = Signal()
delivery_failed = Signal()
endpoint_notice = Signal()

__all__ = [
    "delivery_failed",
    "delivery_succeeded",
    "endpoint_notice",
    "subscription_disabled",
    "subscription_enabled",
]
