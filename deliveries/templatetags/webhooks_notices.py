"""Operational notices in any page of the host or the portal: `{% load webhooks_notices %}`.

- `{% endpoint_notices endpoint replay_url %}`: for an endpoint's page, the notice describing
  its state now (failing: when it will be disabled if nothing changes; disabled: why), what it
  missed with a link to replay it, and its recent notices. `replay_url` is the page's replay
  form (taking `since` and `status` in its query string), e.g.
  `{% url 'webhooks_portal:replay' endpoint.pk as replay %}{% endpoint_notices endpoint replay %}`.
- `{% endpoint_notice_line endpoint %}`: one line for a list of endpoints, empty when healthy.

The caller decides who may see the endpoint (the portal scopes it to its tenant); these tags
show that endpoint's notices only. One query each (none for a healthy endpoint's line).
"""

from __future__ import annotations

from urllib.parse import urlencode

from django import template

from subscriptions.models import Subscription

from ..models import EndpointNotice
from ..services import notices

register = template.Library()

# Notices listed under the current one on an endpoint's page.
HISTORY_SIZE = 5


def replay_link(notice: EndpointNotice, replay_url: str) -> str:
    """`replay_url` filled in for what the notice's incident missed; "" if nothing."""
    query = notices.replay_form_query(notice)
    if not replay_url or query is None:
        return ""
    return f"{replay_url}?{urlencode(query, doseq=True)}"


@register.inclusion_tag("deliveries/notices/endpoint_notices.html")
def endpoint_notices(
    endpoint: Subscription, replay_url: str = "", limit: int = HISTORY_SIZE
) -> dict[str, object]:
    history = notices.for_subscription(endpoint.pk, limit=limit)
    current = next((n for n in history[:1] if notices.is_current(n, endpoint)), None)
    return {
        "endpoint": endpoint,
        "current": current,
        "current_replay": replay_link(current, replay_url) if current else "",
        "history": [(notice, replay_link(notice, replay_url)) for notice in history],
    }


@register.inclusion_tag("deliveries/notices/endpoint_notice_line.html")
def endpoint_notice_line(endpoint: Subscription) -> dict[str, object]:
    return {"notice": notices.current(endpoint)}
