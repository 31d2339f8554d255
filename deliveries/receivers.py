"""Reactions of the pipeline to changes in the subscription registry."""

from __future__ import annotations

import functools
from typing import Any

from django.db import transaction

from subscriptions.models import Subscription, Tenant

from .services import inflight, notices, states


def subscription_admin_extension(sender: type, model_admin: Any, **kwargs: Any) -> Any:
    """The pipeline's part of the subscription admin (deliveries/admin/subscription_extension.py),
    imported when the admin first asks, not when the app loads."""
    from .admin.subscription_extension import PipelineExtension

    return PipelineExtension()


def tenant_admin_extension(sender: type, model_admin: Any, **kwargs: Any) -> Any:
    """The pipeline's health columns in the tenant admin (deliveries/admin/tenant_extension.py),
    imported when the admin first asks."""
    from .admin.tenant_extension import TenantHealthExtension

    return TenantHealthExtension()


def discard_for_disabled(
    sender: type, subscription: Subscription, reason: str, **kwargs: Any
) -> None:
    states.discard(states.waiting_for(subscription.pk), states.disabled_reason(reason))


def notice_for_disabled(
    sender: type, subscription: Subscription, reason: str, **kwargs: Any
) -> None:
    """`subscription_disabled` (after commit): the incident's `disabled` notice."""
    notices.endpoint_disabled(subscription.pk, reason)


def announce_notice(sender: type, notice: Any, **kwargs: Any) -> None:
    """`endpoint_notice`: email it and POST it to the operator URL, as configured."""
    notices.queue_announcement(notice)


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


def forget_tenant_limit(sender: type, instance: Tenant, **kwargs: Any) -> None:
    # This process applies a changed limit at once; other workers within TENANT_LIMIT_TTL.
    inflight.forget_tenant_limits()


def forget_limits_on_settings_change(*, setting: str, **kwargs: Any) -> None:
    if setting == "WEBHOOKS":
        inflight.forget_tenant_limits()
