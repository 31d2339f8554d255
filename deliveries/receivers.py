"""Reactions of the pipeline to changes in the subscription registry and in its settings, all
connected by `connect()` (called once from `DeliveriesConfig.ready()`)."""

from __future__ import annotations

import functools
from typing import Any

from django.core.signals import setting_changed
from django.db import transaction
from django.db.models.signals import post_delete, post_save

from subscriptions.models import EventType, Subscription, Tenant
from subscriptions.services import DELETED_REASON
from subscriptions.signals import subscription_deleted, subscription_disabled

from .services import caches, inflight, notices, states
from .signals import endpoint_notice


def discard_for_disabled(
    sender: type, subscription: Subscription, reason: str, **kwargs: Any
) -> None:
    states.discard(states.waiting_for(subscription.pk), states.disabled_reason(reason))


def discard_for_deleted(sender: type, subscription: Subscription, **kwargs: Any) -> None:
    """`subscription_deleted` (in the deleting transaction): nothing waiting is sent any more."""
    states.discard(states.waiting_for(subscription.pk), states.disabled_reason(DELETED_REASON))


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


def connect() -> None:
    """Connect every receiver above to its signal, each with a `dispatch_uid`, so calling this
    again (a second `ready()` in tests) connects nothing twice."""
    subscription_disabled.connect(
        discard_for_disabled, dispatch_uid="deliveries-discard-for-disabled"
    )
    subscription_deleted.connect(discard_for_deleted, dispatch_uid="deliveries-discard-for-deleted")
    subscription_disabled.connect(
        notice_for_disabled, dispatch_uid="deliveries-notice-for-disabled"
    )
    endpoint_notice.connect(announce_notice, dispatch_uid="deliveries-announce-notice")
    post_save.connect(
        discard_for_changed_filters,
        sender=Subscription,
        dispatch_uid="deliveries-discard-for-changed-filters",
    )
    for name, signal in (("save", post_save), ("delete", post_delete)):
        signal.connect(
            forget_tenant_limit, sender=Tenant, dispatch_uid=f"deliveries-tenant-limit-{name}"
        )
        # The per-process caches of the pipeline (services/caches.py) drop an entry when its
        # row changes here; other processes' copies expire on their own.
        signal.connect(
            caches.forget_tenant, sender=Tenant, dispatch_uid=f"deliveries-tenant-{name}"
        )
        signal.connect(
            caches.forget_event_type,
            sender=EventType,
            dispatch_uid=f"deliveries-event-type-{name}",
        )
    setting_changed.connect(
        forget_limits_on_settings_change, dispatch_uid="deliveries-tenant-limit-settings"
    )
