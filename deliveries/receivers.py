"""Reactions of the pipeline to changes in the subscription registry."""

from __future__ import annotations

from typing import Any

from subscriptions.models import Subscription

from .services import states


def discard_for_disabled(
    sender: type, subscription: Subscription, reason: str, **kwargs: Any
) -> None:
    states.discard_waiting(subscription.pk, f"Discarded: {reason}")
