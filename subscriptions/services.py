"""Changing a subscription's state. Views, admin actions and the pipeline call these."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from . import signals
from .models import Subscription


def disable_subscription(subscription: Subscription, reason: str) -> bool:
    """Disable the subscription, recording `reason`; False if it was already disabled.

    Listeners of `subscription_disabled` run after commit (the deliveries app discards the
    deliveries that were waiting for it).
    """
    now = timezone.now()
    with transaction.atomic():
        changed = Subscription.objects.filter(pk=subscription.pk, is_active=True).update(
            is_active=False, disabled_reason=reason[:500], disabled_at=now, updated_at=now
        )
        if not changed:
            return False
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
    with transaction.atomic():
        changed = Subscription.objects.filter(pk=subscription.pk, is_active=False).update(
            is_active=True,
            disabled_reason="",
            disabled_at=None,
            failing_since=None,
            updated_at=timezone.now(),
        )
        if not changed:
            return False
        subscription.is_active = True
        subscription.disabled_reason = ""
        subscription.disabled_at = None
        subscription.failing_since = None
        transaction.on_commit(
            lambda: signals.subscription_enabled.send(
                sender=Subscription, subscription=subscription
            )
        )
    return True
