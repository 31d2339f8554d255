"""One row per portal link: the link is used once, and the session it opens lasts only while
its row is open (shared/DESIGN.md, "Security": portal links are used once)."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils.translation import gettext_lazy as _

from subscriptions.models import Tenant


class PortalGrantQuerySet(models.QuerySet["PortalGrant"]):
    def open(self) -> PortalGrantQuerySet:
        """Grants neither ended by "Leave" nor revoked: unused links and live sessions."""
        return self.filter(ended_at__isnull=True)


class PortalGrant(models.Model):
    """A portal link made for one tenant, then the portal session it opened.

    The link's signed token carries `id`. Opening the link sets `used_at` once (a second
    opening is refused); "Leave" or a revocation sets `ended_at`, which ends the session and
    makes an unused link unusable. Expiry is the token's (`PORTAL_LINK_MAX_AGE`) and the
    session's (`PORTAL_SESSION_AGE`), both checked without this row.
    """

    id = models.UUIDField(_("id"), primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(
        Tenant,
        on_delete=models.CASCADE,
        related_name="portal_grants",
        verbose_name=_("tenant"),
        help_text=_("The one tenant whose portal the link opens."),
    )
    created_at = models.DateTimeField(
        _("created"), auto_now_add=True, help_text=_("When the link was made.")
    )
    used_at = models.DateTimeField(
        _("used"), null=True, blank=True, help_text=_("When the link opened a session (once).")
    )
    ended_at = models.DateTimeField(
        _("ended"),
        null=True,
        blank=True,
        help_text=_("When the session was left or the link and session were revoked."),
    )

    objects = PortalGrantQuerySet.as_manager()

    class Meta:
        db_table = "webhooks_portal_grant"
        verbose_name = _("portal grant")
        verbose_name_plural = _("portal grants")
        indexes = [
            # Revoking a tenant's open grants.
            models.Index(fields=["tenant", "ended_at"], name="webhooks_portal_grant_open"),
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.pk}"
