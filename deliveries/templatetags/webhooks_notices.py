"""Operational notices in any page of the host or the portal: `{% load webhooks_notices %}`.

- `{% endpoint_notice endpoint replay_url %}`: at the top of an endpoint's page, for a failing
  endpoint: since when, the last error, when it will be disabled if nothing changes, what it
  missed and a link to replay it. `replay_url` is the page's replay form (taking `since` and
  `status` in its query string), e.g.
  `{% url 'webhooks_portal:replay' endpoint.pk as replay %}{% endpoint_notice endpoint replay %}`.
- `{% endpoint_notice_history endpoint replay_url %}`: its latest notices (failing, disabled,
  recovered), each with the replay of what its incident missed.
- `{% endpoint_notice_line endpoint %}`: one line for a list of endpoints, empty when healthy.

The caller decides who may see the endpoint (the portal scopes it to its tenant); these tags
show that endpoint's notices only. One query each (none for a healthy endpoint's line).
"""

from __future__ import annotations

from urllib.parse import urlencode

from django import template

from subscriptions.models import Subscription
from webhooks_core import wrap

from ..models import EndpointNotice, NoticeKind
from ..services import notices

register = template.Library()
register.filter("breakable", wrap.breakable)

# Notices listed under the current one on an endpoint's page.
HISTORY_SIZE = 5


def replay_link(notice: EndpointNotice, replay_url: str) -> str:
    """`replay_url` filled in for what the notice's incident missed; "" if nothing."""
    query = notices.replay_form_query(notice)
    if not replay_url or query is None:
        return ""
    return f"{replay_url}?{urlencode(query, doseq=True)}"


@register.inclusion_tag("deliveries/notices/endpoint_notice.html")
def endpoint_notice(endpoint: Subscription, replay_url: str = "") -> dict[str, object]:
    """The failing endpoint's box: since when, the last error, when it will be disabled if
    nothing changes, what it missed and the replay of it. Nothing for a healthy or disabled
    endpoint (a disabled one's page says so itself; its notice is in the history)."""
    notice = notices.current(endpoint) if endpoint.is_active else None
    failing = notice if notice is not None and notice.kind == NoticeKind.FAILING else None
    return {
        "endpoint": endpoint,
        "notice": failing,
        "replay": replay_link(failing, replay_url) if failing else "",
        # A failing run without its notice (made before notices existed): the figures it has.
        "disable_at": failing.disable_at if failing else notices.disable_time(endpoint),
        # Retries are promised only while some delivery waits for one (not after a final 4xx).
        "retrying": bool(failing or endpoint.failing_since)
        and notices.retries_waiting(endpoint.pk),
    }


@register.inclusion_tag("deliveries/notices/endpoint_notice_history.html")
def endpoint_notice_history(
    endpoint: Subscription, replay_url: str = "", limit: int = HISTORY_SIZE
) -> dict[str, object]:
    """The endpoint's latest notices, newest first, each with its replay link."""
    history = notices.for_subscription(endpoint.pk, limit=limit)
    return {"history": [(notice, replay_link(notice, replay_url)) for notice in history]}


@register.inclusion_tag("deliveries/notices/endpoint_notice_line.html")
def endpoint_notice_line(endpoint: Subscription) -> dict[str, object]:
    return {"notice": notices.current(endpoint)}
