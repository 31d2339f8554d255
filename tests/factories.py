"""Small factories for test rows."""

from __future__ import annotations

from typing import Any

from subscriptions.models import Subscription


def make_subscription(
    url: str, event_types: list[str] | None = None, **fields: Any
) -> Subscription:
    return Subscription.objects.create(url=url, event_types=event_types or ["*"], **fields)
