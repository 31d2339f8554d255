"""`manage.py webhooks_contracts`: --write records the declared schemas, --check fails on a
serializer change that breaks a published version and passes a compatible one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from rest_framework import serializers

from subscriptions.contract_diff import breaking_changes
from subscriptions.contract_schema import serializer_schema
from subscriptions.contracts import contracts

NAME = "billing.invoice.paid"


class Item(serializers.Serializer):
    sku = serializers.CharField()
    qty = serializers.IntegerField()


class Invoice(serializers.Serializer):
    """As published: the contract receivers were written for."""

    id = serializers.IntegerField()
    amount = serializers.DecimalField(max_digits=10, decimal_places=2)
    paid_at = serializers.DateTimeField()
    memo = serializers.CharField(required=False)
    items = Item(many=True)


# Real edits of that serializer, one per kind of change.
class InvoiceWithoutPaidAt(serializers.Serializer):
    id = serializers.IntegerField()
    amount = serializers.DecimalField(max_digits=10, decimal_places=2)
    memo = serializers.CharField(required=False)
    items = Item(many=True)


class InvoiceWithIntegerAmount(serializers.Serializer):
    id = serializers.IntegerField()
    amount = serializers.IntegerField()
    paid_at = serializers.DateTimeField()
    memo = serializers.CharField(required=False)
    items = Item(many=True)


class InvoiceWithRequiredMemo(serializers.Serializer):
    id = serializers.IntegerField()
    amount = serializers.DecimalField(max_digits=10, decimal_places=2)
    paid_at = serializers.DateTimeField()
    memo = serializers.CharField()
    items = Item(many=True)


class ItemWithTextQty(serializers.Serializer):
    sku = serializers.CharField()
    qty = serializers.CharField()


class InvoiceWithTextQty(serializers.Serializer):
    id = serializers.IntegerField()
    amount = serializers.DecimalField(max_digits=10, decimal_places=2)
    paid_at = serializers.DateTimeField()
    memo = serializers.CharField(required=False)
    items = ItemWithTextQty(many=True)


class InvoiceWithNullableMemo(serializers.Serializer):
    id = serializers.IntegerField()
    amount = serializers.DecimalField(max_digits=10, decimal_places=2)
    paid_at = serializers.DateTimeField()
    memo = serializers.CharField(required=False, allow_null=True)
    items = Item(many=True)


class InvoiceWithCurrency(serializers.Serializer):
    """Compatible: a new optional field, and longer help texts."""

    id = serializers.IntegerField(help_text="The invoice number.")
    amount = serializers.DecimalField(max_digits=12, decimal_places=2)
    paid_at = serializers.DateTimeField()
    memo = serializers.CharField(required=False)
    items = Item(many=True)
    currency = serializers.CharField(required=False)


def declare(*serializers_by_version: type[serializers.Serializer]) -> None:
    contracts.forget(NAME)
    for version, serializer in enumerate(serializers_by_version, start=1):
        contracts.register(NAME, serializer=serializer, version=version)
        if version > 1:
            contracts.downgrade(NAME, version, version - 1)(lambda data: data)


@pytest.fixture
def record(tmp_path) -> Iterator[str]:
    """The published contract recorded with --write; the path of the file."""
    path = str(tmp_path / "webhook_contracts.json")
    declare(Invoice)
    call_command("webhooks_contracts", "--write", "--file", path)
    yield path
    contracts.forget(NAME)


def check(path: str) -> str:
    """The command's output; raises CommandError (exit status 1) as the command does."""
    out = StringIO()
    call_command("webhooks_contracts", "--check", "--file", path, stdout=out)
    return out.getvalue()


def failed_check(path: str) -> str:
    """The output of a check that must fail, and its error."""
    out = StringIO()
    with pytest.raises(CommandError) as failure:
        call_command("webhooks_contracts", "--check", "--file", path, stdout=out)
    return out.getvalue() + str(failure.value)


def test_write_records_every_declared_version(record):
    recorded = json.loads(Path(record).read_text(encoding="utf-8"))
    assert recorded == {NAME: {"1": serializer_schema(Invoice)}}
    assert "match" in check(record)


@pytest.mark.parametrize(
    ("changed", "reason"),
    [
        (InvoiceWithoutPaidAt, "v1: paid_at: removed"),
        (InvoiceWithIntegerAmount, "v1: amount: type changed from string (decimal) to integer"),
        (InvoiceWithRequiredMemo, "v1: memo: newly required"),
        (InvoiceWithTextQty, "v1: items[]/qty: type changed from integer to string"),
        (InvoiceWithNullableMemo, "v1: memo: type changed from string to null or string"),
    ],
)
def test_check_fails_on_a_breaking_change_to_a_published_version(record, changed, reason):
    declare(changed)

    out = failed_check(record)

    assert f"BREAKING  {NAME} {reason}" in out
    assert "breaking change(s) to published event versions" in out


def test_check_passes_a_compatible_change_and_says_to_record_it(record):
    declare(InvoiceWithCurrency)

    out = check(record)

    assert "compatible  billing.invoice.paid v1: schema changed compatibly" in out
    assert "No breaking change" in out


def test_a_breaking_change_in_a_new_version_is_fine(record):
    # The old serializer stays as version 1; the edit is version 2 with its down-converter.
    declare(Invoice, InvoiceWithoutPaidAt)

    out = check(record)

    assert "billing.invoice.paid v2: new" in out
    assert "BREAKING" not in out


def test_removing_a_published_version_breaks(record):
    contracts.forget(NAME)
    assert "v1: no longer declared" in failed_check(record)


def test_write_refuses_to_record_a_breaking_change_unless_told(record):
    declare(InvoiceWithoutPaidAt)

    with pytest.raises(CommandError, match="Not written"):
        call_command("webhooks_contracts", "--write", "--file", record)
    assert json.loads(Path(record).read_text(encoding="utf-8"))[NAME]["1"] == serializer_schema(
        Invoice
    )
    call_command("webhooks_contracts", "--write", "--allow-breaking", "--file", record)
    assert "match" in check(record)


def test_check_without_a_record_fails(tmp_path):
    assert "No recorded contracts" in failed_check(str(tmp_path / "missing.json"))


def test_recursive_schemas_are_compared_without_end():
    node = {"type": "object", "properties": {"child": {"$ref": "#/$defs/Node"}}}
    schema = {**node, "$defs": {"Node": node}}
    assert breaking_changes(schema, schema) == []
