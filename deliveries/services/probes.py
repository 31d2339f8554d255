"""Test events: a signed `webhook.test` event sent to one subscription, recorded like any other."""

from __future__ import annotations

from django.utils import timezone

from subscriptions.models import Subscription

from ..payloads import isoformat
from .publishing import Publication, publish_event

TEST_EVENT_TYPE = "webhook.test"


class SubscriptionInactive(ValueError):
    """A disabled subscription receives nothing, test events included."""


def send_test_event(subscription: Subscription) -> Publication:
    """Publish a `webhook.test` event to `subscription` only, whatever its event filters.

    Raises SubscriptionInactive if it is disabled."""
    if not subscription.is_active:
        raise SubscriptionInactive("The subscription is disabled; enable it to test it.")
    return publish_event(
        TEST_EVENT_TYPE,
        {
            "subscription": str(subscription.pk),
            "message": "This is a test event.",
            "sent_at": isoformat(timezone.now()),
        },
        subscription=subscription,
    )
