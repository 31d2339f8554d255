"""Changing a subscription's state. Views, admin actions and the pipeline call these."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from webhooks_core.conf import webhook_settings
from webhooks_core.fields import EncryptedHeadersField, EncryptedTextField

from . import signals
from .catalog import merge_pins
from .models import Subscription, Tenant
from .secrets import generate_secret, generate_signing_key, secrets_equal, validate_secret


class SubscriptionLimitReached(Exception):
    """The tenant already has as many subscriptions as its limit allows."""

    def __init__(self, tenant: Tenant, limit: int) -> None:
        super().__init__(
            f"Tenant {tenant.key!r} has reached its limit of {limit} subscriptions; delete one "
            "or ask for a higher limit."
        )
        self.tenant = tenant
        self.limit = limit


def tenant_for_new_subscription(key: str) -> Tenant:
    """The tenant `key` (created on first use), locked until the caller's transaction ends,
    once it is known to have room for one more subscription.

    Call it inside `transaction.atomic()` and create the subscription in the same transaction:
    the row lock (PostgreSQL) makes concurrent creations for one tenant wait for each other, so
    they cannot overshoot the limit together. Raises SubscriptionLimitReached at the limit
    (`Tenant.max_subscriptions`, else `TENANT_MAX_SUBSCRIPTIONS`), and
    django.core.exceptions.ValidationError for a malformed key.
    """
    key = Tenant.objects.for_key(key).pk
    tenant = Tenant.objects.select_for_update().get(pk=key)
    limit = tenant.subscription_limit
    if limit is not None and Subscription.objects.for_tenant(key).count() >= limit:
        raise SubscriptionLimitReached(tenant, limit)
    return tenant


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


DELETED_REASON = "Endpoint deleted."
# Every write-only value of an endpoint, as a delete leaves it: signing secrets and keys,
# credentials and custom header values are gone at once; the rest (URL, filters) stays with
# the history it explains.
ERASED_ON_DELETE: dict[str, object] = {
    "secret": "",
    "previous_secret": "",
    "previous_secret_expires_at": None,
    "signing_key": "",
    "previous_signing_key": "",
    "oauth2_client_secret": "",
    "tls_client_key": "",
    "headers": {},
}


def delete_subscription(subscription: Subscription) -> bool:
    """Delete an endpoint, keeping its history; False if it was already deleted.

    Nothing more is sent: the row leaves every normal query (`Subscription.objects`), is
    marked inactive, and its secrets and header values are erased at once. Its deliveries,
    attempts and notices stay, reachable from the events they belong to, until retention
    prunes them (the row itself goes with its last delivery). Listeners of
    `subscription_deleted` run in the same transaction: the deliveries app discards what was
    waiting.
    A request already on its way finishes and is recorded as an attempt like any other.

    A soft delete rather than a nullable foreign key: deliveries keep their endpoint, hence
    their tenant (who may see them) and their URL, and the pipeline needs no case for a
    delivery without one; an attempt in flight stores its row as usual.
    """
    now = timezone.now()
    with transaction.atomic():
        changes = {
            **ERASED_ON_DELETE,
            "deleted_at": now,
            "is_active": False,
            "disabled_reason": DELETED_REASON,
            "disabled_at": now,
            "updated_at": now,
        }
        changed = Subscription.objects.filter(pk=subscription.pk).update(**changes)
        if not changed:
            return False
        for name, value in changes.items():
            setattr(subscription, name, value)
        # Inside the transaction, unlike the other signals: what the listeners stop (the
        # deliveries waiting) stops in the same commit as the delete, or not at all.
        signals.subscription_deleted.send(sender=Subscription, subscription=subscription)
    return True


def rotate_secret(
    subscription: Subscription, new_secret: str | None = None, *, overlap: float | None = None
) -> str:
    """Give the subscription a new signing secret (and, if it has one, a new v1a signing key);
    return the new secret.

    The old secret and key keep signing beside the new ones for `overlap` seconds (default
    `SECRET_ROTATION_OVERLAP`; 0 ends them at once), so receivers can switch without a window
    in which they reject deliveries. A second rotation within the overlap drops the oldest.
    `new_secret` (validated) lets an operator bring their own; it must differ from the current
    one. Raises ValueError for a malformed or unchanged secret or a negative overlap. Secrets
    and keys are never logged.
    """
    if new_secret is None:
        new_secret = generate_secret()
    else:
        validate_secret(new_secret)
    seconds = float(webhook_settings.SECRET_ROTATION_OVERLAP if overlap is None else overlap)
    if seconds < 0:
        raise ValueError("The overlap is a number of seconds, at least 0.")
    now = timezone.now()
    with transaction.atomic():
        # Locked so that two concurrent rotations cannot both demote the same secret.
        current = Subscription.objects.select_for_update().get(pk=subscription.pk)
        if secrets_equal(current.secret, new_secret):
            raise ValueError("The new secret must differ from the current one.")
        fields = {
            "secret": new_secret,
            "previous_secret": current.secret,
            "previous_secret_expires_at": now + dt.timedelta(seconds=seconds),
            "updated_at": now,
        }
        if current.signing_key:
            fields["signing_key"] = generate_signing_key()
            fields["previous_signing_key"] = current.signing_key
        Subscription.objects.filter(pk=subscription.pk).update(**fields)
    for name, value in fields.items():
        setattr(subscription, name, value)
    return new_secret


def pin_version(subscription: Subscription, name: str, version: int) -> Subscription:
    """Move `subscription` to `version` of the declared type `name` (its next deliveries of
    that type are sent in it); the other pins stay. Raises catalog.PinError for an undeclared
    type or version, or a deprecated one (see `catalog.merge_pins`)."""
    with transaction.atomic():
        # Locked, so two moves of different types at once both stick.
        locked = Subscription.objects.select_for_update().get(pk=subscription.pk)
        pins = merge_pins(locked.versions, {name: version})
        Subscription.objects.filter(pk=locked.pk).update(versions=pins, updated_at=timezone.now())
    subscription.versions = pins
    return subscription


def reencrypt_subscriptions(batch_size: int = 500) -> int:
    """Rewrite every encrypted value of every subscription under the first key of
    `WEBHOOKS["ENCRYPTION_KEYS"]`; return how many rows were rewritten.

    Rows are read in primary-key order, `batch_size` at a time, each batch locked in its own
    transaction (PostgreSQL) so that a rotation of a secret running at the same time is neither
    lost nor overwritten. Raises `encryption.UndecryptableValue` if a value opens with none of
    the keys (nothing of that batch is written; earlier batches stay rewritten, and running the
    command again after fixing the keys finishes the job). `updated_at` is left as it was: the
    subscription's configuration did not change.
    """
    names = [
        field.attname
        for field in Subscription._meta.concrete_fields
        if isinstance(field, EncryptedTextField | EncryptedHeadersField)
    ]
    done = 0
    last = None
    while True:
        with transaction.atomic():
            rows = Subscription.objects.select_for_update().order_by("pk").only("pk", *names)
            if last is not None:
                rows = rows.filter(pk__gt=last)
            batch = list(rows[:batch_size])
            for row in batch:
                Subscription.objects.filter(pk=row.pk).update(
                    **{name: getattr(row, name) for name in names}
                )
        if not batch:
            return done
        done += len(batch)
        last = batch[-1].pk
