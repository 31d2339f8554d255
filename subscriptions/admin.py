from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db import models
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from .models import EventType, Subscription


@admin.register(EventType)
class EventTypeAdmin(admin.ModelAdmin):
    list_display = ["name", "description", "has_schema", "created_at"]
    search_fields = ["name", "description"]

    @admin.display(boolean=True, description=_("schema"))
    def has_schema(self, obj: EventType) -> bool:
        return bool(obj.schema)


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ["__str__", "url", "owner", "status", "payload_format", "created_at"]
    list_filter = ["is_active", "payload_format"]
    search_fields = ["url", "description", "id"]
    readonly_fields = [
        "id",
        "disabled_reason",
        "disabled_at",
        "failing_since",
        "last_success_at",
        "created_at",
        "updated_at",
    ]
    # The secret is shown once, in the message after creation; never in a form or a list.
    exclude = ["secret", "previous_secret", "previous_secret_expires_at"]
    raw_id_fields = ["owner"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    @admin.display(description=_("status"), ordering="is_active")
    def status(self, obj: Subscription) -> str:
        if obj.is_active:
            return format_html('<span style="color:#2e7d32">{}</span>', _("active"))
        return format_html(
            '<span style="color:#c62828" title="{}">{}</span>', obj.disabled_reason, _("disabled")
        )

    def save_model(self, request: HttpRequest, obj: Subscription, form: Any, change: bool) -> None:
        if not change and obj.owner_id is None:
            obj.owner = request.user
        super().save_model(request, obj, form, change)
        if not change:
            self.message_user(
                request,
                format_html(
                    "{} <code>{}</code> {}",
                    _("Signing secret:"),
                    obj.secret,
                    _("Copy it now: it will not be shown again."),
                ),
                messages.WARNING,
            )
