"""Example payloads for the event catalog, derived from an event type's JSON Schema.

The example is what a receiver can expect, not a random sample: it prefers what the schema
author wrote (`examples`, `const`, `default`, the first `enum` value), then a plain value of the
declared type and format. Every property is filled in, optional ones too, so the reader sees
every field. Only references inside the schema are followed (the catalog refuses others), and
recursion stops at `MAX_DEPTH`.
"""

from __future__ import annotations

from typing import Any

MAX_DEPTH = 8

FORMAT_EXAMPLES: dict[str, str] = {
    "date-time": "2026-01-31T12:00:00Z",
    "date": "2026-01-31",
    "time": "12:00:00Z",
    "email": "customer@example.com",
    "idn-email": "customer@example.com",
    "uri": "https://example.com/",
    "iri": "https://example.com/",
    "uri-reference": "/path",
    "hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "uuid": "0190f1b2-0000-7000-8000-000000000000",
    "duration": "P1D",
}


def example_from_schema(schema: Any) -> Any:
    """A JSON value that illustrates `schema` (a JSON Schema object or boolean)."""
    return _example(schema, schema, 0)


def _resolve(ref: str, root: Any) -> Any:
    if not ref.startswith("#"):
        return {}
    node = root
    for part in ref.lstrip("#").split("/"):
        if not part:
            continue
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return {}
    return node


def _example(schema: Any, root: Any, depth: int) -> Any:
    if not isinstance(schema, dict) or depth > MAX_DEPTH:
        return None
    if isinstance(schema.get("$ref"), str):
        return _example(_resolve(schema["$ref"], root), root, depth + 1)
    for key in ("examples",):
        if isinstance(schema.get(key), list) and schema[key]:
            return schema[key][0]
    for key in ("const", "default"):
        if key in schema:
            return schema[key]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for key in ("oneOf", "anyOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return _example(schema[key][0], root, depth + 1)
    if isinstance(schema.get("allOf"), list) and schema["allOf"]:
        parts = [_example(part, root, depth + 1) for part in schema["allOf"]]
        if all(isinstance(part, dict) for part in parts):
            merged: dict[str, Any] = {}
            for part in parts:
                merged.update(part)
            own = _example({k: v for k, v in schema.items() if k != "allOf"}, root, depth + 1)
            if isinstance(own, dict):
                merged.update(own)
            return merged
        return parts[0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), kind[0] if kind else None)
    if kind is None:
        if "properties" in schema:
            kind = "object"
        elif "items" in schema:
            kind = "array"
    if kind == "object":
        properties = schema.get("properties") or {}
        return {
            name: _example(sub, root, depth + 1)
            for name, sub in properties.items()
            if isinstance(name, str)
        }
    if kind == "array":
        items = schema.get("items")
        if isinstance(schema.get("prefixItems"), list):
            return [_example(sub, root, depth + 1) for sub in schema["prefixItems"]]
        return [_example(items, root, depth + 1)] if isinstance(items, dict) else []
    if kind == "string":
        return _string(schema)
    if kind == "integer":
        return _number(schema, 1)
    if kind == "number":
        return _number(schema, 1.5)
    if kind == "boolean":
        return True
    return None


def _string(schema: dict[str, Any]) -> str:
    fmt = schema.get("format")
    if isinstance(fmt, str) and fmt in FORMAT_EXAMPLES:
        return FORMAT_EXAMPLES[fmt]
    value = "string"
    minimum = schema.get("minLength")
    if isinstance(minimum, int) and minimum > len(value):
        value = value + "x" * (minimum - len(value))
    maximum = schema.get("maxLength")
    if isinstance(maximum, int) and maximum < len(value):
        value = value[: max(maximum, 0)]
    return value


def _number(schema: dict[str, Any], fallback: float) -> float:
    for key in ("minimum", "exclusiveMinimum"):
        bound = schema.get(key)
        if isinstance(bound, int | float) and not isinstance(bound, bool):
            value = bound if key == "minimum" else bound + 1
            return int(value) if isinstance(fallback, int) else value
    maximum = schema.get("maximum")
    if isinstance(maximum, int | float) and not isinstance(maximum, bool) and maximum < fallback:
        return maximum
    return fallback
