"""The portal's small pure helpers: examples from JSON Schemas, durations, figures."""

from __future__ import annotations

import jsonschema
import pytest

from deliveries.services.health import Health
from subscriptions.examples import example_from_schema
from webhooks_portal.humanize import duration
from webhooks_portal.templatetags.webhooks_portal import p95, percent

SCHEMAS = [
    {"type": "object", "properties": {"id": {"type": "integer"}, "ok": {"type": "boolean"}}},
    {"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string"}}}},
    {"type": "object", "properties": {"n": {"type": "number", "minimum": 10, "maximum": 20}}},
    {"type": "object", "properties": {"s": {"type": "string", "minLength": 12, "maxLength": 12}}},
    {"type": "object", "properties": {"kind": {"const": "refund"}}, "required": ["kind"]},
    {"type": "object", "properties": {"at": {"type": "string", "format": "date-time"}}},
    {"type": "object", "properties": {"email": {"type": "string", "format": "email"}}},
    {"type": "object", "properties": {"v": {"type": ["null", "integer"], "minimum": 3}}},
    {"type": "object", "properties": {"c": {"enum": ["EUR", "USD"]}}},
    {"type": "object", "properties": {"x": {"oneOf": [{"type": "integer"}, {"type": "string"}]}}},
    {
        "type": "object",
        "$defs": {"money": {"type": "object", "properties": {"amount": {"type": "string"}}}},
        "properties": {"total": {"$ref": "#/$defs/money"}},
    },
    {
        "allOf": [
            {"type": "object", "properties": {"a": {"type": "integer"}}},
            {"type": "object", "properties": {"b": {"type": "string"}}},
        ]
    },
    {
        "type": "object",
        "properties": {"p": {"type": "array", "prefixItems": [{"type": "integer"}]}},
    },
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_the_example_of_a_schema_is_valid_against_it(schema):
    example = example_from_schema(schema)

    jsonschema.validate(example, schema)
    assert isinstance(example, dict) and example


def test_an_example_prefers_what_the_author_wrote():
    schema = {
        "type": "object",
        "properties": {
            "total": {"type": "string", "examples": ["42.00"]},
            "currency": {"type": "string", "default": "EUR"},
        },
    }

    assert example_from_schema(schema) == {"total": "42.00", "currency": "EUR"}


def test_a_recursive_schema_ends():
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "child": {"$ref": "#"}},
    }

    example = example_from_schema(schema)

    depth, node = 0, example
    while isinstance(node, dict) and node.get("child") is not None:
        node, depth = node["child"], depth + 1
    assert 1 <= depth <= 10


@pytest.mark.parametrize("schema", [True, {}, None, {"$ref": "#/missing"}])
def test_odd_schemas_give_an_empty_or_null_example(schema):
    assert example_from_schema(schema) in (None, {})


@pytest.mark.parametrize(
    "seconds, words",
    [
        (86400, "1 day"),
        (7200, "2 hours"),
        (90, "1 minute 30 seconds"),
        (0, "0 seconds"),
        (90061, "1 day 1 hour"),
    ],
)
def test_duration(seconds, words):
    assert duration(seconds) == words


@pytest.mark.parametrize(
    "rate, shown", [(None, "—"), (1.0, "100.0%"), (0.9996, "99.9%"), (0.5, "50.0%"), (0, "0.0%")]
)
def test_percent_never_rounds_a_failure_away(rate, shown):
    assert percent(rate) == shown


def test_p95_reads_the_bucket_bound():
    assert p95(Health()) == "—"
    assert p95(Health(attempts_24h=3, p95_ms=250)) == "≤ 250 ms"
    assert p95(Health(attempts_24h=3, p95_ms=2500)) == "≤ 2.5 s"
    assert p95(Health(attempts_24h=3, p95_ms=30000, p95_over=True)) == "> 30 s"
