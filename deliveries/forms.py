"""Forms of the admin's operational pages."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import DeliveryStatus
from .services.replay import DEFAULT_REPLAY_STATUSES, REPLAYABLE_STATUSES


class ReplayForm(forms.Form):
    since = forms.DateTimeField(
        label=_("since"),
        help_text=_("Deliveries created at or after this time (UTC), e.g. 2026-11-27 18:00."),
    )
    until = forms.DateTimeField(
        label=_("until"),
        required=False,
        help_text=_("Deliveries created before this time; empty for now."),
    )
    status = forms.MultipleChoiceField(
        label=_("statuses"),
        choices=[(s, DeliveryStatus(s).label) for s in REPLAYABLE_STATUSES],
        initial=list(DEFAULT_REPLAY_STATUSES),
        widget=forms.CheckboxSelectMultiple,
        help_text=_(
            "Skipped deliveries are what a subscription missed while disabled. Retrying ones "
            "wait for a later attempt (up to hours after an outage): replaying them sends them "
            "now instead."
        ),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and since >= until:
            self.add_error("until", _("Must be after 'since'."))
        return data
