"""Reactions of the pipeline to changes in the subscription registry."""

from __future__ import annotations

from typing import Any

from subscriptions.models import Subscription

from .services import states


def subscription_admin_extension(sender: type, model_admin: Any, **kwargs: Any) -> Any:
    """The pipeline's part of the subscription admin (deliveries/admin/subscription_extension.py),
    imported when the admin first asks, not when the app loads."""
    from .admin.subscription_extension import PipelineExtension

    return PipelineExtension()


def discard_for_disabled(
    sender: type, subscription: Subscription, reason: str, **kwargs: Any
) -> None:
    states.discard_waiting(subscription.pk, f"Discarded: {reason}")
