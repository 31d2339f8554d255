"""Reactions of the pipeline to changes in the subscription registry."""

from __future__ import annotations

from typing import Any

from subscriptions.models import Subscription, Tenant

from .services import inflight, states


def discard_for_disabled(
    sender: type, subscription: Subscription, reason: str, **kwargs: Any
) -> None:
    states.discard_waiting(subscription.pk, f"Discarded: {reason}")


def forget_tenant_limit(sender: type, instance: Tenant, **kwargs: Any) -> None:
    # This process applies a changed limit at once; other workers within TENANT_LIMIT_TTL.
    inflight.forget_tenant_limits()


def forget_limits_on_settings_change(*, setting: str, **kwargs: Any) -> None:
    if setting == "WEBHOOKS":
        inflight.forget_tenant_limits()
