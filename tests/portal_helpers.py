"""Rows and sessions for the portal tests."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from subscriptions.models import EventType, Subscription
from tests.factories import make_subscription
from webhooks_portal.access import entry_path, make_token

ORDER_SCHEMA = {
    "type": "object",
    "required": ["id", "total"],
    "properties": {
        "id": {"type": "integer", "minimum": 1},
        "total": {"type": "string", "examples": ["42.00"]},
        "currency": {"enum": ["EUR", "USD"]},
        "placed_at": {"type": "string", "format": "date-time"},
    },
}


def order_type() -> EventType:
    return EventType.objects.create(
        name="order.created", description="A customer placed an order.", schema=ORDER_SCHEMA
    )


def tenant_endpoint(
    tenant: str, url: str = "http://127.0.0.1:9/hook", **fields: Any
) -> Subscription:
    """A subscription of `tenant`."""
    return make_subscription(url, tenant=tenant, **fields)


def portal_url(name: str, *args: object) -> str:
    return reverse(f"webhooks_portal:{name}", args=args)


def open_portal(client: Any, tenant: str, *, confirm: bool = False) -> None:
    """Open `tenant`'s portal in `client` the way a person does: through a link. With
    `confirm`, the browser shows another tenant (or a host login) and confirms the switch on
    the page the link answers."""
    path = entry_path(make_token(tenant))
    response = client.get(path)
    if confirm:
        assert response.status_code == 200 and b'id="link-confirm"' in response.content
        response = client.post(path.split("?")[0], {"token": response.context["token"]})
    assert response.status_code == 302, response.content
