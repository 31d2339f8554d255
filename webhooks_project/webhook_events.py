"""The reference project's demo event type, so that a fresh `dev.py up` shows a catalog with
schemas and examples. A host declares its own types the same way, in a `webhook_events`
module of any of its apps (docs/contracts.md).

`order.created` has two versions: v2 (current) sends the total as a decimal string with its
currency; v1 (deprecated) sent whole cents. Subscriptions pinned to v1 keep receiving v1,
rendered from v2 by `order_created_2_to_1`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rest_framework import serializers

from subscriptions.contracts import downgrade, register_event


class OrderCreatedV1(serializers.Serializer):
    """Version 1, frozen as it was published: the total in cents."""

    id = serializers.IntegerField(help_text="The order's number.")
    amount_cents = serializers.IntegerField(help_text="The total in cents.")


class OrderCreated(serializers.Serializer):
    """Version 2: the total as a decimal string, and its currency."""

    id = serializers.IntegerField(help_text="The order's number.")
    total = serializers.DecimalField(max_digits=12, decimal_places=2, help_text="The total.")
    currency = serializers.CharField(
        max_length=3, required=False, help_text="ISO 4217 code; EUR when absent."
    )


register_event(
    "order.created",
    serializer=OrderCreatedV1,
    version=1,
    description="An order was placed (the total in cents).",
    example={"id": 1001, "amount_cents": 4200},
    deprecated=True,
)
register_event(
    "order.created",
    serializer=OrderCreated,
    version=2,
    description="An order was placed.",
    example={"id": 1001, "total": "42.00", "currency": "EUR"},
)


@downgrade("order.created", 2, 1)
def order_created_2_to_1(data: dict[str, Any]) -> dict[str, Any]:
    """v2 -> v1: the decimal total back into whole cents; v1 had no currency."""
    return {"id": data["id"], "amount_cents": int(Decimal(data["total"]) * 100)}
