"""An event type declared in code for the tests: `shop.order.placed` in three versions.

v1 (deprecated): the total in cents. v2: the total as a decimal string and when it was placed.
v3 (latest): v2 with a required currency and the order's lines. One down-converter per step.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from rest_framework import serializers

from subscriptions.contracts import ContractRegistry

NAME = "shop.order.placed"


@dataclass
class Line:
    sku: str
    qty: int


@dataclass
class Order:
    """What the host's model would be: serialized through the latest version's serializer."""

    id: int
    total: Decimal
    currency: str
    placed_at: dt.datetime
    lines: list[Line] = field(default_factory=list)
    note: str | None = None


class OrderV1(serializers.Serializer):
    id = serializers.IntegerField()
    amount_cents = serializers.IntegerField()


class OrderV2(serializers.Serializer):
    id = serializers.IntegerField()
    total = serializers.DecimalField(max_digits=12, decimal_places=2)
    placed_at = serializers.DateTimeField()


class LineSerializer(serializers.Serializer):
    sku = serializers.CharField(max_length=32)
    qty = serializers.IntegerField(min_value=1)


class OrderV3(serializers.Serializer):
    id = serializers.IntegerField()
    total = serializers.DecimalField(max_digits=12, decimal_places=2)
    currency = serializers.CharField(max_length=3)
    placed_at = serializers.DateTimeField()
    lines = LineSerializer(many=True)
    note = serializers.CharField(required=False, allow_null=True)


def v3_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    return {"id": data["id"], "total": data["total"], "placed_at": data["placed_at"]}


def v2_to_v1(data: dict[str, Any]) -> dict[str, Any]:
    return {"id": data["id"], "amount_cents": int(Decimal(data["total"]) * 100)}


def declare(registry: ContractRegistry) -> None:
    registry.register(NAME, serializer=OrderV1, version=1, deprecated=True, description="Cents.")
    registry.register(NAME, serializer=OrderV2, version=2, description="Decimal total.")
    registry.register(
        NAME,
        serializer=OrderV3,
        version=3,
        description="An order was placed.",
        example={
            "id": 7,
            "total": "12.50",
            "currency": "EUR",
            "placed_at": "2026-01-31T12:00:00Z",
            "lines": [{"sku": "A-1", "qty": 2}],
        },
    )
    registry.downgrade(NAME, 3, 2)(v3_to_v2)
    registry.downgrade(NAME, 2, 1)(v2_to_v1)


def an_order(**fields: Any) -> Order:
    values: dict[str, Any] = {
        "id": 1001,
        "total": Decimal("42.00"),
        "currency": "EUR",
        "placed_at": dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.UTC),
        "lines": [Line("A-1", 2), Line("B-7", 1)],
    }
    values.update(fields)
    return Order(**values)
