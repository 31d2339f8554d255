"""Which changes of a published version's schema break its receivers.

A version, once published, is a promise: its receivers were written for that shape. Breaking
it (`webhooks_contracts --check` fails) is, anywhere in the data, nested objects and array
items included: a property removed, a property's type changed (its JSON type, `format`, or
nullability), a property newly required, or the version itself no longer declared. Anything
else (a new optional property, new descriptions, other bounds) is compatible.
"""

from __future__ import annotations

from typing import Any

# Deepest nesting compared (recursive schemas would otherwise never end).
MAX_DEPTH = 32


def breaking_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Why `new` breaks receivers of `old` (both JSON Schemas as `contract_schema` makes
    them), one sentence per change with its place (`lines[]/qty`); [] if compatible."""
    problems: list[str] = []
    _compare(old, new, old, new, "", problems, 0)
    return problems


def _resolve(node: Any, root: dict[str, Any]) -> Any:
    # Only the local `#/$defs/...` references that contract_schema writes, and a bounded chain.
    for _ in range(MAX_DEPTH):
        if not (isinstance(node, dict) and isinstance(node.get("$ref"), str)):
            return node
        ref = node["$ref"]
        if not ref.startswith("#/$defs/"):
            return node
        node = (root.get("$defs") or {}).get(ref.removeprefix("#/$defs/"), {})
    return node


def _types(node: dict[str, Any]) -> set[str]:
    kind = node.get("type")
    if isinstance(kind, str):
        return {kind}
    if isinstance(kind, list):
        return {k for k in kind if isinstance(k, str)}
    return set()


def _compare(
    old: Any, new: Any, old_root: dict, new_root: dict, where: str, out: list[str], depth: int
) -> None:
    if depth > MAX_DEPTH:
        return
    old, new = _resolve(old, old_root), _resolve(new, new_root)
    if not isinstance(old, dict) or not isinstance(new, dict):
        return
    place = where or "(root)"
    if _types(old) != _types(new) or old.get("format") != new.get("format"):
        out.append(f"{place}: type changed from {_describe(old)} to {_describe(new)}")
        return
    old_props = old.get("properties") or {}
    new_props = new.get("properties") or {}
    for name in old_props:
        if name not in new_props:
            out.append(f"{_join(where, name)}: removed")
    newly_required = set(new.get("required") or ()) - set(old.get("required") or ())
    for name in sorted(newly_required):
        out.append(f"{_join(where, name)}: newly required")
    for name, sub in old_props.items():
        if name in new_props:
            _compare(sub, new_props[name], old_root, new_root, _join(where, name), out, depth + 1)
    if "items" in old and "items" in new:
        _compare(old["items"], new["items"], old_root, new_root, f"{where}[]", out, depth + 1)


def _join(where: str, name: str) -> str:
    return f"{where}/{name}" if where else name


def _describe(node: dict[str, Any]) -> str:
    kinds = sorted(_types(node)) or ["any"]
    text = " or ".join(kinds)
    return f"{text} ({node['format']})" if node.get("format") else text
