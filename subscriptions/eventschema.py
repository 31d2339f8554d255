"""Event data checked against an event type's JSON Schema, with every regular expression run by
RE2, in time linear in the input.

jsonschema runs `pattern` and `patternProperties` with Python's backtracking `re`: a catalog
pattern such as ``^(a+)+$`` takes seconds per publish for a few dozen characters, growing
exponentially, and pins a web thread. Here the validator class of the schema's draft is extended
(jsonschema's public `validators.extend`) so that `pattern`, `patternProperties` and
`additionalProperties` (which consults `patternProperties`) match with RE2 (the `google-re2`
package). RE2 cannot compile look-arounds or back-references; such patterns are refused when the
schema is written (`pattern_problems`), so a schema that is stored can always be checked.

`unevaluatedProperties` also consults `patternProperties` through jsonschema internals that use
`re`; a schema combining the two is refused at write time rather than run with `re`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import re2  # type: ignore[import-untyped]  # google-re2 ships no type information
from jsonschema import ValidationError
from jsonschema.exceptions import best_match
from jsonschema.validators import extend, validator_for

# Keywords whose values are data, not subschemas: a "pattern" inside them is not a keyword.
_DATA_KEYWORDS = frozenset({"const", "enum", "default", "examples", "example"})
# Memory RE2 may use per compiled pattern (bytes): bounds what one catalog pattern can cost.
RE2_MAX_MEM = 8 << 20


class PatternError(ValueError):
    """A pattern RE2 cannot compile; the message names the pattern and the reason."""


@functools.lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> Any:
    """`pattern` compiled by RE2 (cached). Raises PatternError if RE2 refuses it (look-arounds,
    back-references, bad syntax, or more than `RE2_MAX_MEM` bytes of program)."""
    options = re2.Options()
    options.log_errors = False  # the reason goes into the exception, not onto stderr
    options.max_mem = RE2_MAX_MEM
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise PatternError(f"{pattern!r} is not a pattern RE2 can run: {reason}") from None


def _search(pattern: str, text: str) -> bool:
    return compile_pattern(pattern).search(text) is not None


# --- The keywords, as jsonschema's own (`jsonschema._keywords`) but matching with RE2 --------


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _search(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, patterns: dict[str, Any], instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if _search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(
    validator: Any, additional: Any, instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    properties = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    extras = [
        key
        for key in instance
        if key not in properties and not any(_search(pattern, key) for pattern in patterns)
    ]
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        names = ", ".join(repr(extra) for extra in sorted(extras))
        yield ValidationError(f"Additional properties are not allowed ({names} unexpected)")


_KEYWORDS = {
    "pattern": _pattern,
    "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties,
}


@functools.lru_cache(maxsize=16)
def _re2_validator(base: type) -> type:
    return extend(base, validators=_KEYWORDS)


def validator_class(schema: Any) -> type:
    """The jsonschema validator class for `schema`'s draft (`$schema`; default 2020-12), with
    the pattern keywords matched by RE2."""
    return _re2_validator(validator_for(schema))


def first_error(data: Any, schema: Any) -> ValidationError | None:
    """The most relevant way `data` breaks `schema` (jsonschema's `best_match`, as
    `jsonschema.validate` raises), or None if it matches. The schema must have passed
    `pattern_problems` (done when it is stored). May raise RecursionError for a recursive
    schema over very deep data."""
    validator = validator_class(schema)(schema)
    return best_match(validator.iter_errors(data))


def pattern_problems(schema: Any) -> list[str]:
    """Why `schema` cannot be checked with RE2: every `pattern` and `patternProperties` key RE2
    cannot compile, and `unevaluatedProperties` beside `patternProperties` (see the module's
    docstring). Empty if it can."""
    problems: list[str] = []
    seen: set[str] = set()

    def check(pattern: str) -> None:
        try:
            compile_pattern(pattern)
        except PatternError as exc:
            problems.append(str(exc))

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
            return
        if not isinstance(node, dict):
            return
        for key, value in node.items():
            if key in _DATA_KEYWORDS:
                continue
            if key == "pattern" and isinstance(value, str):
                check(value)
            elif key == "patternProperties" and isinstance(value, dict):
                seen.add("patternProperties")
                for pattern in value:
                    check(pattern)
            elif key == "unevaluatedProperties":
                seen.add("unevaluatedProperties")
            walk(value)

    walk(schema)
    if {"patternProperties", "unevaluatedProperties"} <= seen:
        problems.append(
            "'unevaluatedProperties' cannot be combined with 'patternProperties' here: "
            "use 'additionalProperties'."
        )
    return problems
