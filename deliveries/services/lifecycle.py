"""Disabling and enabling subscriptions, with what that means for their deliveries."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from subscriptions.models import Subscription

from .. import signals
from . import states


def disable_subscription(subscription: Subscription, reason: str) -> bool:
    """Disable the subscription and discard its waiting deliveries, recording `reason`.

    Returns False if it was already disabled (nothing changes, no signal).
    """
    now = timezone.now()
    with transaction.atomic():
        changed = Subscription.objects.filter(pk=subscription.pk, is_active=True).update(
            is_active=False, disabled_reason=reason[:500], disabled_at=now, updated_at=now
        )
        if not changed:
            return False
        states.discard_waiting(subscription.pk, f"Discarded: {reason}")
        subscription.is_active = False
        subscription.disabled_reason = reason[:500]
        subscription.disabled_at = now
        transaction.on_commit(
            lambda: signals.subscription_disabled.send(
                sender=Subscription, subscription=subscription, reason=reason
            )
        )
    return True


def enable_subscription(subscription: Subscription) -> bool:
    """Enable a disabled subscription; its failure history starts afresh."""
    changed = Subscription.objects.filter(pk=subscription.pk, is_active=False).update(
        is_active=True,
        disabled_reason="",
        disabled_at=None,
        failing_since=None,
        updated_at=timezone.now(),
    )
    if changed:
        subscription.is_active = True
        subscription.disabled_reason = ""
        subscription.disabled_at = None
        subscription.failing_since = None
    return bool(changed)
