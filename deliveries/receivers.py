"""Reactions of the pipeline to changes in the subscription registry."""

from __future__ import annotations

import functools
from typing import Any

from django.db import transaction

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


def discard_for_changed_filters(
    sender: type,
    instance: Subscription,
    created: bool,
    update_fields: frozenset[str] | None = None,
    **kwargs: Any,
) -> None:
    """`post_save` of a subscription: once committed, discard what waits for an event type its
    filters no longer select. The attempt checks again (a queryset update sends no signal)."""
    if created or (update_fields is not None and "event_types" not in update_fields):
        return
    transaction.on_commit(
        functools.partial(states.discard_unselected, instance.pk, list(instance.event_types or ())),
        using=kwargs.get("using"),
    )
