"""Operational notices in the admin: a read-only list (`EndpointNoticeAdmin`) and the panel of
a subscription's latest notices on its change page (through the pipeline's extension of the
subscription admin)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import admin
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from subscriptions.admin import tenant_filter
from subscriptions.models import Subscription

from ..models import EndpointNotice, NoticeKind
from ..services import notices
from .common import ReadOnlyAdminMixin, at_seconds, prefilled_replay_url, seconds_display

KIND_COLOURS = {
    NoticeKind.FAILING: "#ef6c00",
    NoticeKind.DISABLED: "#c62828",
    NoticeKind.RECOVERED: "#2e7d32",
}
# Notices shown on a subscription's page; the rest are a click away in the notice list.
PANEL_SIZE = 5


def kind_badge(notice: EndpointNotice) -> str:
    return format_html(
        '<b style="color:{}">{}</b>',
        KIND_COLOURS[NoticeKind(notice.kind)],
        notice.get_kind_display(),
    )


def replay_link(model_admin: admin.ModelAdmin, notice: EndpointNotice) -> str:
    """The replay form, filled in for what the notice's incident missed; "" if nothing."""
    if notice.missed_since is None:
        return ""
    return prefilled_replay_url(
        model_admin, notice.subscription_id, notice.missed_since, notices.replay_statuses(notice)
    )


@admin.register(EndpointNotice)
class EndpointNoticeAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    # Few columns, so that the list fits beside the admin's sidebar and filters at 1400 px:
    # the figures of a notice read as one sentence in `summary`.
    list_display = ["created", "badge", "tenant", "subscription", "summary", "replay"]
    list_filter = [tenant_filter("tenant_id"), "kind", "created_at"]
    search_fields = ["subscription__url", "subscription__description", "reason"]
    date_hierarchy = "created_at"
    list_select_related = ["subscription", "tenant"]
    fields = readonly_fields = (
        "subscription",
        "tenant",
        "badge",
        "created",
        "incident_started",
        "disable_at_",
        "reason",
        "missed_count",
        "missed_since_",
        "replay",
        "announced",
        "email_result",
        "webhook_result",
    )

    created = seconds_display("created_at", _("created"))
    incident_started = seconds_display("incident_started_at", _("incident started"))
    disable_at_ = seconds_display("disable_at", _("disabled at if nothing changes"))
    missed_since_ = seconds_display("missed_since", _("missed since"))
    announced = seconds_display("announced_at", _("announced"))

    @admin.display(description=_("kind"), ordering="kind")
    def badge(self, obj: EndpointNotice) -> str:
        return kind_badge(obj)

    @admin.display(description=_("what happened"))
    def summary(self, obj: EndpointNotice) -> str:
        return summary(obj)

    @admin.display(description=_("replay"))
    def replay(self, obj: EndpointNotice) -> str:
        url = replay_link(self, obj)
        if not url:
            return "-"
        return format_html('<a class="notice-replay" href="{}">{}</a>', url, _("Replay…"))


def summary(notice: EndpointNotice) -> str:
    """The notice in a line and a half: its reason, then the incident's start, when the
    endpoint will be disabled if nothing changes, and how many deliveries it missed."""
    facts = [format_html("{} {}", _("incident began"), at_seconds(notice.incident_started_at))]
    if notice.disable_at is not None:
        facts.append(
            format_html("{} {}", _("disabled at"), at_seconds(notice.disable_at))
            + format_html(" {}", _("if nothing changes"))
        )
    facts.append(
        format_html(
            "{}",
            ngettext("%(n)d delivery missed", "%(n)d deliveries missed", notice.missed_count)
            % {"n": notice.missed_count},
        )
    )
    return format_html(
        '{}<br><small class="quiet">{}</small>',
        notice.reason or "-",
        format_html_join("; ", "{}", ((fact,) for fact in facts)),
    )


def notices_panel(model_admin: admin.ModelAdmin, request: HttpRequest, obj: Subscription) -> str:
    """The latest notices of `obj` as an HTML block for its change page."""
    latest = notices.for_subscription(obj.pk, limit=PANEL_SIZE)
    site = model_admin.admin_site.name
    rows = [
        {
            "notice": notice,
            "badge": kind_badge(notice),
            "created": at_seconds(notice.created_at),
            "started": at_seconds(notice.incident_started_at),
            "disable_at": at_seconds(notice.disable_at) if notice.disable_at else "",
            "replay_url": replay_link(model_admin, notice),
            "current": notices.is_current(notice, obj),
        }
        for notice in latest
    ]
    listing = reverse(f"{site}:deliveries_endpointnotice_changelist")
    return render_to_string(
        "deliveries/admin/notices_panel.html",
        {
            "rows": rows,
            "all_url": f"{listing}?{urlencode({'subscription__id__exact': obj.pk})}",
        },
        request=request,
    )
