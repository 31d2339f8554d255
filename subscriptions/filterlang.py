"""The filter language: a declarative JSON filter over an event, never user code.

One language routes events to subscriptions (`Subscription.filter`), searches the delivery log,
selects deliveries for a bulk retry and drives the simulator. A filter is evaluated three ways
with the same answer, which `tests/test_filterlang_property.py` checks on generated filters and
events: in Python (`matches`), on PostgreSQL (jsonb) and on SQLite (JSON1) (`filter_q`).

The event it looks at is ``{"type": str, "channels": [str, ...], "data": {...}}``.

Grammar (docs/filters.md has the same with examples)::

    filter     = { clause, ... }                 every clause holds (an empty filter: all)
    clause     = "$and": [filter, ...]           every one holds (1 to MAX_ITEMS)
               | "$or":  [filter, ...]           at least one holds (1 to MAX_ITEMS)
               | "$not": filter                  it does not hold
               | path: scalar                    shorthand for path: {"$eq": scalar}
               | path: { operator: operand, ... }  every operator holds
    path       = "type" | "channels" | "data.<key>(.<key>)*"
    key        = 1 to 64 of [A-Za-z0-9_-]  (object keys only: arrays are never indexed)
    operator   = $eq $ne $gt $gte $lt $lte $in $nin $exists
    scalar     = string | number | true | false | null

Semantics, exactly:

- A path is *missing* when a key along it is absent or a value along it is not an object.
  A JSON `null` at the path is present (it is not missing).
- Values have a JSON kind: null, boolean, number, string, array, object. Booleans are not
  numbers (`true` never equals `1`). Numbers compare by value (`1` equals `1.0`).
- `$eq v` holds when the path is present, its kind is v's and it equals v. An array or an
  object at the path never equals a scalar. `$ne v` is exactly `not $eq v`, so it holds for a
  missing path too. `$in [v, ...]` is `$eq` of any; `$nin` is `not $in`.
- `$gt $gte $lt $lte v` (v a number or a string) hold when the path is present and of v's
  kind and compares so: numbers numerically, strings by Unicode code points (PostgreSQL
  compares with `COLLATE "C"`, i.e. UTF-8 bytes, which is the same order). Any other kind, or
  a missing path, is false (and so `$not` of it is true).
- `$exists true` holds when the path is present (null included); `$exists false` when missing.
- `type` is the event type, a string that is always present: its operands are strings.
- `channels` is the event's list of channel names: `$eq c` holds when the event carries c,
  `$ne c` when it does not, `$in [c, ...]` when it carries any of them, `$nin` when none.
  Channels take string operands and no other operator.
- Every condition is true or false, never unknown: `$not` is plain negation.

Bounds (a filter outside them is refused with the path of the problem): nesting of
`$and`/`$or`/`$not` at most MAX_DEPTH; at most MAX_CONDITIONS operator conditions;
at most MAX_ITEMS entries in an `$and`, `$or`, `$in` or `$nin`; strings at most
MAX_STRING_LENGTH characters; integers within the signed 64-bit range; at most MAX_BYTES of
compact JSON in all. Numbers in event data compare exactly on all three evaluators as long as
integers stay within the signed 64-bit range and decimals are IEEE doubles (which is what
`publish()` stores); wider integers are compared as doubles by SQLite.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from django.core.exceptions import ValidationError
from django.db import NotSupportedError
from django.db.models import BooleanField, Expression, F, Q

MAX_DEPTH = 5
MAX_CONDITIONS = 50
MAX_ITEMS = 100
MAX_PATH_KEYS = 10
MAX_STRING_LENGTH = 1024
MAX_BYTES = 8192
INT_MIN, INT_MAX = -(2**63), 2**63 - 1

COMPARISONS = ("$gt", "$gte", "$lt", "$lte")
OPERATORS = ("$eq", "$ne", *COMPARISONS, "$in", "$nin", "$exists")
LOGICAL = ("$and", "$or", "$not")
KEY_RE = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")

Kind = Literal["null", "boolean", "number", "string", "array", "object"]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


# -- the parsed form ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    """One operator applied at one path: `path` is ("type",), ("channels",) or ("data", key,
    ...); `op` one of OPERATORS; `operand` a scalar, a tuple of scalars ($in/$nin) or a bool
    ($exists)."""

    path: tuple[str, ...]
    op: str
    operand: Any


@dataclass(frozen=True)
class Node:
    """`kind` "and" / "or" over `children`, or "not" of its single child, or "cond"."""

    kind: Literal["and", "or", "not", "cond"]
    children: tuple[Node, ...] = ()
    condition: Condition | None = None


# -- validation ------------------------------------------------------------------------------


def kind_of(value: Any) -> Kind:
    """The JSON kind of a decoded JSON value (bool before int: True is an int in Python)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    return "object"


class _Parser:
    def __init__(self) -> None:
        self.conditions = 0

    def fail(self, where: list[str], message: str) -> ValidationError:
        at = " > ".join(where) if where else "(top)"
        return ValidationError(
            "%(path)s: %(problem)s", code="invalid_filter", params={"path": at, "problem": message}
        )

    def filter(self, value: Any, where: list[str], depth: int) -> Node:
        if not isinstance(value, dict):
            raise self.fail(where, "a filter is a JSON object.")
        if depth > MAX_DEPTH:
            raise self.fail(where, f"filters nest at most {MAX_DEPTH} levels of $and/$or/$not.")
        children: list[Node] = []
        for key, item in value.items():
            here = [*where, str(key)]
            if not isinstance(key, str):
                raise self.fail(here, "keys are strings.")
            if key in ("$and", "$or"):
                if not isinstance(item, list) or not 1 <= len(item) <= MAX_ITEMS:
                    raise self.fail(here, f"takes a list of 1 to {MAX_ITEMS} filters.")
                parts = tuple(
                    self.filter(part, [*where, f"{key}[{i}]"], depth + 1)
                    for i, part in enumerate(item)
                )
                children.append(Node("and" if key == "$and" else "or", parts))
            elif key == "$not":
                children.append(Node("not", (self.filter(item, here, depth + 1),)))
            elif key.startswith("$"):
                raise self.fail(
                    here,
                    "unknown operator here; a filter's keys are paths (type, channels, "
                    "data.<key>...) or $and, $or, $not.",
                )
            else:
                children.extend(self.field(self.path(key, here), item, here))
        return Node("and", tuple(children))

    def path(self, key: str, where: list[str]) -> tuple[str, ...]:
        if key in ("type", "channels"):
            return (key,)
        parts = key.split(".")
        if parts[0] != "data" or len(parts) < 2:
            raise self.fail(where, "a path is type, channels or data.<key>(.<key>)*.")
        if len(parts) - 1 > MAX_PATH_KEYS:
            raise self.fail(where, f"a path has at most {MAX_PATH_KEYS} keys after data.")
        for part in parts[1:]:
            if not KEY_RE.match(part):
                raise self.fail(where, "each key of a path is 1 to 64 letters, digits, '_' or '-'.")
        return tuple(parts)

    def field(self, path: tuple[str, ...], value: Any, where: list[str]) -> list[Node]:
        if isinstance(value, dict):
            if not value:
                raise self.fail(where, "an operator object names at least one operator.")
            return [
                self.condition(path, op, operand, [*where, str(op)])
                for op, operand in value.items()
            ]
        if isinstance(value, list):
            raise self.fail(where, "a list is not a value to compare with; use $in.")
        return [self.condition(path, "$eq", value, where)]

    def condition(self, path: tuple[str, ...], op: Any, operand: Any, where: list[str]) -> Node:
        if op not in OPERATORS:
            raise self.fail(where, f"unknown operator; use one of {', '.join(OPERATORS)}.")
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            raise self.fail(where, f"a filter has at most {MAX_CONDITIONS} conditions.")
        field = path[0]
        if op == "$exists":
            if field != "data":
                raise self.fail(where, f"{field} is always present; $exists applies to data.")
            if not isinstance(operand, bool):
                raise self.fail(where, "$exists takes true or false.")
            return Node("cond", condition=Condition(path, op, operand))
        if op in ("$in", "$nin"):
            if not isinstance(operand, list) or not 1 <= len(operand) <= MAX_ITEMS:
                raise self.fail(where, f"{op} takes a list of 1 to {MAX_ITEMS} values.")
            values = tuple(
                self.scalar(field, item, [*where, f"[{i}]"]) for i, item in enumerate(operand)
            )
            return Node("cond", condition=Condition(path, op, values))
        if field == "channels" and op in COMPARISONS:
            raise self.fail(where, "channels take $eq, $ne, $in and $nin only.")
        scalar = self.scalar(field, operand, where)
        if op in COMPARISONS and kind_of(scalar) not in ("number", "string"):
            raise self.fail(where, f"{op} compares with a number or a string.")
        return Node("cond", condition=Condition(path, op, scalar))

    def scalar(self, field: str, value: Any, where: list[str]) -> Any:
        kind = kind_of(value)
        if kind in ("array", "object"):
            raise self.fail(where, "a value here is a string, a number, true, false or null.")
        if field != "data" and kind != "string":
            raise self.fail(where, f"{field} is compared with strings.")
        if kind == "string" and len(value) > MAX_STRING_LENGTH:
            raise self.fail(where, f"strings are at most {MAX_STRING_LENGTH} characters.")
        if kind == "number":
            if isinstance(value, float) and not math.isfinite(value):
                raise self.fail(where, "numbers are finite (JSON has no NaN or Infinity).")
            if isinstance(value, int) and not INT_MIN <= value <= INT_MAX:
                raise self.fail(where, "integers are within the signed 64-bit range.")
        if kind == "string" and ("\x00" in value or re.search("[\ud800-\udfff]", value)):
            raise self.fail(where, "strings cannot hold U+0000 or lone surrogates.")
        return value


def parse(value: Any) -> Node:
    """The parsed form of a filter; raises ValidationError as `validate_filter` does."""
    try:
        size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False))
    except (TypeError, ValueError):
        size = None  # refused below with the path of what is not JSON
    except RecursionError:
        raise _Parser().fail([], f"filters nest at most {MAX_DEPTH} levels.") from None
    node = _Parser().filter(value, [], 0)
    if size is not None and size > MAX_BYTES:
        raise _Parser().fail([], f"a filter is at most {MAX_BYTES} bytes of JSON; this is {size}.")
    return node


def validate_filter(value: Any) -> dict[str, Any]:
    """`value` if it is a valid filter (see the module docstring), else ValidationError.

    Returns the filter unchanged (a dict; `{}` selects everything). Raises
    django.core.exceptions.ValidationError (code "invalid_filter") whose message starts with
    the path of the first problem inside the filter, e.g.
    ``"$or[1] > data.amount > $gt: $gt compares with a number or a string."``; DRF serializers
    turn it into a field error of the field that holds the filter.
    """
    parse(value)
    return value


def is_empty(value: Mapping[str, Any] | None) -> bool:
    """Whether the filter selects everything without looking at the event (None or {})."""
    return not value


# -- evaluation in Python --------------------------------------------------------------------


def _resolve(event: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    if path[0] != "data":
        return event.get(path[0], MISSING)
    current: Any = event.get("data", MISSING)
    for key in path[1:]:
        if not isinstance(current, dict) or key not in current:
            return MISSING
        current = current[key]
    return current


def _equal(value: Any, operand: Any) -> bool:
    return value is not MISSING and kind_of(value) == kind_of(operand) and value == operand


def _holds(condition: Condition, event: Mapping[str, Any]) -> bool:
    value = _resolve(event, condition.path)
    op, operand = condition.op, condition.operand
    if condition.path == ("channels",):
        carried = {
            c for c in (value if isinstance(value, list | tuple) else ()) if isinstance(c, str)
        }
        if op in ("$eq", "$ne"):
            return (operand in carried) == (op == "$eq")
        return (not carried.isdisjoint(operand)) == (op == "$in")
    if op == "$exists":
        return (value is not MISSING) == operand
    if op == "$eq":
        return _equal(value, operand)
    if op == "$ne":
        return not _equal(value, operand)
    if op == "$in":
        return any(_equal(value, item) for item in operand)
    if op == "$nin":
        return not any(_equal(value, item) for item in operand)
    if value is MISSING or kind_of(value) != kind_of(operand):
        return False
    if op == "$gt":
        return bool(value > operand)
    if op == "$gte":
        return bool(value >= operand)
    if op == "$lt":
        return bool(value < operand)
    return bool(value <= operand)


def _evaluate(node: Node, event: Mapping[str, Any]) -> bool:
    if node.kind == "cond":
        assert node.condition is not None
        return _holds(node.condition, event)
    if node.kind == "and":
        return all(_evaluate(child, event) for child in node.children)
    if node.kind == "or":
        return any(_evaluate(child, event) for child in node.children)
    return not _evaluate(node.children[0], event)


def matches(filter: Mapping[str, Any] | None, event: Mapping[str, Any]) -> bool:
    """Whether `event` (``{"type": str, "channels": [str], "data": {...}}``; a key may be
    absent) satisfies `filter`. None or {} matches every event.

    Raises ValidationError for a filter `validate_filter` refuses.
    """
    if not filter:
        return True
    return _evaluate(parse(filter), event)


def event_document(type: str, channels: Sequence[str] | None, data: Any) -> dict[str, Any]:
    """The mapping `matches` reads, from an event's fields."""
    return {"type": type, "channels": list(channels or ()), "data": data}


# -- evaluation in SQL -----------------------------------------------------------------------


class FilterMatch(Expression):
    """A boolean SQL expression: does the row's (`type`, `channels`, `data`) satisfy the filter.

    Compiled for PostgreSQL (jsonb operators) and SQLite (JSON1 functions); every condition is
    written so that it is TRUE or FALSE, never NULL, which keeps NOT exact. Other databases
    raise NotSupportedError. Use through `filter_q`.
    """

    output_field = BooleanField()

    def __init__(self, node: Node, prefix: str = "") -> None:
        super().__init__()
        self.node = node
        self.sources: list[Any] = [F(f"{prefix}type"), F(f"{prefix}channels"), F(f"{prefix}data")]

    def get_source_expressions(self) -> list[Any]:
        return self.sources

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        self.sources = list(exprs)

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        if connection.vendor not in ("postgresql", "sqlite"):
            raise NotSupportedError(
                "Filters run in SQL on PostgreSQL and SQLite only; evaluate them with matches()."
            )
        columns = {}
        for name, expression in zip(("type", "channels", "data"), self.sources, strict=True):
            sql, params = compiler.compile(expression)
            columns[name] = (sql, list(params))
        writer = (
            _PostgresWriter(columns)
            if connection.vendor == "postgresql"
            else _SqliteWriter(columns)
        )
        return writer.node(self.node)


class _Writer:
    """Writes a parsed filter as SQL. Column SQL may carry parameters: each use repeats them."""

    true = "TRUE"
    false = "FALSE"

    def __init__(self, columns: dict[str, tuple[str, list[Any]]]) -> None:
        self.columns = columns

    def col(self, name: str, params: list[Any]) -> str:
        sql, own = self.columns[name]
        params.extend(own)
        return sql

    def node(self, node: Node) -> tuple[str, list[Any]]:
        if node.kind == "cond":
            assert node.condition is not None
            params: list[Any] = []
            sql = self.condition(node.condition, params)
            return sql, params
        if node.kind == "not":
            sql, params = self.node(node.children[0])
            return f"(NOT {sql})", params
        if not node.children:
            return (self.true if node.kind == "and" else self.false), []
        parts, params = [], []
        for child in node.children:
            sql, child_params = self.node(child)
            parts.append(sql)
            params.extend(child_params)
        joiner = " AND " if node.kind == "and" else " OR "
        return f"({joiner.join(parts)})", params

    def condition(self, c: Condition, params: list[Any]) -> str:
        field = c.path[0]
        if field == "channels":
            values = [c.operand] if c.op in ("$eq", "$ne") else list(c.operand)
            sql = self.carries(values, params)
            return sql if c.op in ("$eq", "$in") else f"(NOT {sql})"
        if c.op == "$exists":
            sql = self.exists(c.path, params)
            return sql if c.operand else f"(NOT {sql})"
        if c.op in ("$eq", "$ne", "$in", "$nin"):
            values = [c.operand] if c.op in ("$eq", "$ne") else list(c.operand)
            parts = [self.equal(c.path, value, params) for value in values]
            sql = parts[0] if len(parts) == 1 else f"({' OR '.join(parts)})"
            return sql if c.op in ("$eq", "$in") else f"(NOT {sql})"
        return self.compare(c.path, c.op, c.operand, params)

    def carries(self, values: list[str], params: list[Any]) -> str:
        raise NotImplementedError

    def exists(self, path: tuple[str, ...], params: list[Any]) -> str:
        raise NotImplementedError

    def equal(self, path: tuple[str, ...], value: Any, params: list[Any]) -> str:
        raise NotImplementedError

    def compare(self, path: tuple[str, ...], op: str, value: Any, params: list[Any]) -> str:
        raise NotImplementedError


_SQL_OPS = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}


class _PostgresWriter(_Writer):
    # `->` with a text key: NULL for an absent key and for a non-object (an array is never
    # indexed by a key like "0"), so NULL means exactly "missing"; a JSON null is 'null'::jsonb.

    def value(self, path: tuple[str, ...], params: list[Any]) -> str:
        sql = self.col("data", params)
        for key in path[1:]:
            sql = f"({sql} -> %s)"
            params.append(key)
        return sql

    def carries(self, values: list[str], params: list[Any]) -> str:
        column = self.col("channels", params)
        params.append(values)
        # `?|`: does the array hold any of these strings as an element (text[] parameter).
        return f"COALESCE(({column} ?| %s::text[]), FALSE)"

    def exists(self, path: tuple[str, ...], params: list[Any]) -> str:
        return f"({self.value(path, params)} IS NOT NULL)"

    def equal(self, path: tuple[str, ...], value: Any, params: list[Any]) -> str:
        if path[0] == "type":
            column = self.col("type", params)
            params.append(value)
            return f"COALESCE(({column} = %s), FALSE)"
        sql = self.value(path, params)
        params.append(json.dumps(value))
        # jsonb equality: same kind and same value (numbers as numeric: 1 = 1.0; true <> 1).
        return f"COALESCE(({sql} = %s::jsonb), FALSE)"

    def compare(self, path: tuple[str, ...], op: str, value: Any, params: list[Any]) -> str:
        sign = _SQL_OPS[op]
        if path[0] == "type":
            column = self.col("type", params)
            params.append(value)
            return f'COALESCE(({column} COLLATE "C" {sign} %s), FALSE)'
        # CASE, not AND: SQL does not promise to test the kind before the cast, and casting a
        # string to numeric would be an error.
        first = self.value(path, params)
        if kind_of(value) == "number":
            second = self.value(path, params)
            params.append(repr(value) if isinstance(value, float) else str(value))
            return (
                f"COALESCE(CASE WHEN jsonb_typeof({first}) = 'number' "
                f"THEN ({second})::numeric {sign} %s::numeric ELSE FALSE END, FALSE)"
            )
        second = self.value(path, params)
        params.append(value)
        return (
            f"COALESCE(CASE WHEN jsonb_typeof({first}) = 'string' "
            f"THEN ({second} #>> '{{}}') COLLATE \"C\" {sign} %s ELSE FALSE END, FALSE)"
        )


class _SqliteWriter(_Writer):
    # json_type(): NULL for a missing path, 'null' for a JSON null, else the kind ('true',
    # 'false', 'integer', 'real', 'text', 'array', 'object'). Keys are quoted in the path, so an
    # array is never indexed by a key like "0".
    true = "1"
    false = "0"

    @staticmethod
    def json_path(path: tuple[str, ...]) -> str:
        return "$" + "".join(f'."{key}"' for key in path[1:])

    def typed(self, path: tuple[str, ...], params: list[Any]) -> str:
        column = self.col("data", params)
        params.append(self.json_path(path))
        return f"json_type({column}, %s)"

    def extracted(self, path: tuple[str, ...], params: list[Any]) -> str:
        column = self.col("data", params)
        params.append(self.json_path(path))
        return f"json_extract({column}, %s)"

    def carries(self, values: list[str], params: list[Any]) -> str:
        column = self.col("channels", params)
        params.extend(values)
        marks = ", ".join(["%s"] * len(values))
        return (
            f"EXISTS (SELECT 1 FROM json_each({column}) AS c "
            f"WHERE c.type = 'text' AND c.value IN ({marks}))"
        )

    def exists(self, path: tuple[str, ...], params: list[Any]) -> str:
        return f"({self.typed(path, params)} IS NOT NULL)"

    def _kinds(self, value: Any) -> str:
        kind = kind_of(value)
        if kind == "number":
            return "IN ('integer', 'real')"
        if kind == "string":
            return "= 'text'"
        if kind == "null":
            return "= 'null'"
        return "= 'true'" if value else "= 'false'"

    def equal(self, path: tuple[str, ...], value: Any, params: list[Any]) -> str:
        if path[0] == "type":
            column = self.col("type", params)
            params.append(value)
            return f"COALESCE(({column} = %s), 0)"
        kind = kind_of(value)
        typed = self.typed(path, params)
        if kind in ("null", "boolean"):
            return f"COALESCE(({typed} {self._kinds(value)}), 0)"
        extracted = self.extracted(path, params)
        params.append(value)
        return f"COALESCE(({typed} {self._kinds(value)} AND {extracted} = %s), 0)"

    def compare(self, path: tuple[str, ...], op: str, value: Any, params: list[Any]) -> str:
        sign = _SQL_OPS[op]
        if path[0] == "type":
            column = self.col("type", params)
            params.append(value)
            return f"COALESCE(({column} {sign} %s), 0)"
        typed = self.typed(path, params)
        extracted = self.extracted(path, params)
        params.append(value)
        # Strings: BINARY collation, i.e. UTF-8 bytes, the order of code points.
        return f"COALESCE(({typed} {self._kinds(value)} AND {extracted} {sign} %s), 0)"


def filter_q(filter: Mapping[str, Any] | None, *, prefix: str = "") -> Q:
    """The filter as a Q over a model with `type`, `channels` and `data` fields, reached
    through `prefix` (e.g. "event__" from Delivery). None or {} is `Q()` (everything).

    Evaluated by the database (PostgreSQL or SQLite; others raise NotSupportedError when the
    query runs) with exactly the semantics of `matches`. Raises ValidationError for a filter
    `validate_filter` refuses.
    """
    if not filter:
        return Q()
    return Q(FilterMatch(parse(filter), prefix))


# -- compilation to a SQL/JSON path (PostgreSQL's jsonb_path_match) -------------------------
#
# A subscription's filter is compiled once, when it is saved, into a `strict` SQL/JSON path
# predicate over `event_document(...)`, which the fan-out evaluates in its own query on
# PostgreSQL (`jsonb_path_match(document, filter_jsonpath::jsonpath, '{}', true)`).
#
# Why each choice gives exactly `matches()` (tests/test_filterlang_property.py checks it):
# - `strict` mode: a key accessor on a non-object (an array included) or an absent key is an
#   error, never an unwrapping of arrays; so "missing" is exactly "the accessor errs".
# - Inside a predicate an error, or a comparison of two kinds (true == 1, "1" == 1, an array or
#   an object with a scalar), is *unknown*. Each condition is written as
#   `(P) && !((P) is unknown)`, which is true when P is true and false otherwise: conditions are
#   never unknown, so `!` and `||` are plain boolean logic, as in Python.
# - Numbers compare by exact value, as Python compares ints and floats: operands and the
#   document's numbers are written as exact decimals (`_exact_number`: a float's full binary
#   value, not its shortest repr, which as a decimal is another number: float(2**55) has the
#   repr 3.602879701896397e+16, yet equals the int 2**55), compared as numeric by jsonpath.
#   The document must be written by `jsonpath_document`. Strings compare by code point in
#   jsonpath whatever the database collation (binary UTF-8 comparison); null equals only null.
# - No `like_regex`, no `starts with`, no arithmetic, no item methods.
# A construct that could not be written exactly compiles to None, and that subscription's
# filter is evaluated in Python by the fan-out instead.


def _jsonpath_string(value: str) -> str:
    # JSON string escapes are jsonpath string escapes (\" \\ \n \uXXXX ...). ensure_ascii keeps
    # the text ASCII, so no character is left to the scanner's reading of the encoding.
    return json.dumps(value, ensure_ascii=True)


MAX_JSONPATH_LENGTH = 65536


def _exact_number(value: int | float) -> str:
    """A JSON number whose decimal value is exactly `value` (ints as digits, floats by their
    full binary expansion, e.g. 0.1 -> 0.1000000000000000055511151231257827...)."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("JSON numbers are finite")
        text = format(Decimal(value), "f")
        return "0" if text in ("-0", "0") else text
    return str(int(value))


_NOT_IN_JSONB = re.compile("[\x00\ud800-\udfff]")


def _exact_json(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        # jsonb refuses U+0000 and lone surrogates: such a document is left to Python.
        if _NOT_IN_JSONB.search(value):
            raise ValueError("not representable in jsonb")
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, bool) or value is None:
        out.append(json.dumps(value))
    elif isinstance(value, int | float):
        out.append(_exact_number(value))
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _exact_json(item, out)
        out.append("]")
    elif isinstance(value, dict):
        out.append("{")
        for i, (key, item) in enumerate(value.items()):
            if not isinstance(key, str):
                raise TypeError("JSON object keys are strings")
            out.append("," if i else "")
            _exact_json(key, out)
            out.append(":")
            _exact_json(item, out)
        out.append("}")
    else:
        raise TypeError(f"not a JSON value: {type(value).__name__}")


def jsonpath_document(document: Mapping[str, Any]) -> str | None:
    """`document` (from `event_document`) as JSON text for jsonb_path_match against compiled
    filters: numbers written exactly (`_exact_number`). None if it is not plain JSON (then
    filters are evaluated in Python)."""
    out: list[str] = []
    try:
        _exact_json(dict(document), out)
    except (TypeError, ValueError, RecursionError):
        return None
    return "".join(out)


def _jsonpath_literal(value: Any) -> str | None:
    kind = kind_of(value)
    if kind == "null":
        return "null"
    if kind == "boolean":
        return "true" if value else "false"
    if kind == "string":
        return _jsonpath_string(value)
    if kind == "number":
        text = _exact_number(value)
        if not re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", text):
            return None
        # A leading minus is jsonpath's unary minus on the literal: parenthesised so that it
        # binds to the number alone.
        return f"({text})" if text.startswith("-") else text
    return None


def _jsonpath_accessor(path: tuple[str, ...]) -> str:
    return "$" + "".join(f".{_jsonpath_string(key)}" for key in path)


def _known(predicate: str) -> str:
    """True when `predicate` is true; false when it is false or unknown (an error, kinds
    that do not compare, a missing path)."""
    return f"(({predicate}) && !(({predicate}) is unknown))"


_TRUE = "exists($)"  # the document itself: always exactly one item


class _NotExpressible(Exception):
    pass


def _jsonpath_condition(c: Condition) -> str:
    accessor = _jsonpath_accessor(c.path)
    if c.path == ("channels",):
        values = [c.operand] if c.op in ("$eq", "$ne") else list(c.operand)
        literals = []
        for value in values:
            literal = _jsonpath_literal(value)
            if literal is None:
                raise _NotExpressible
            literals.append(f"@ == {literal}")
        carries = _known(f"exists({accessor}[*] ? ({' || '.join(literals)}))")
        return carries if c.op in ("$eq", "$in") else f"!{carries}"
    if c.op == "$exists":
        present = _known(f"exists({accessor})")
        return present if c.operand else f"!{present}"
    if c.op in ("$eq", "$ne", "$in", "$nin"):
        values = [c.operand] if c.op in ("$eq", "$ne") else list(c.operand)
        parts = []
        for value in values:
            literal = _jsonpath_literal(value)
            if literal is None:
                raise _NotExpressible
            parts.append(f"{accessor} == {literal}")
        # One of them true is enough; unknown ones (other kinds, missing) count as false.
        equal = _known(" || ".join(parts))
        return equal if c.op in ("$eq", "$in") else f"!{equal}"
    literal = _jsonpath_literal(c.operand)
    if literal is None or kind_of(c.operand) not in ("number", "string"):
        raise _NotExpressible
    return _known(f"{accessor} {_SQL_OPS[c.op]} {literal}")


def _jsonpath_node(node: Node) -> str:
    if node.kind == "cond":
        assert node.condition is not None
        return _jsonpath_condition(node.condition)
    if node.kind == "not":
        return f"!({_jsonpath_node(node.children[0])})"
    if not node.children:
        return _TRUE if node.kind == "and" else f"!({_TRUE})"
    joiner = " && " if node.kind == "and" else " || "
    return "(" + joiner.join(_jsonpath_node(child) for child in node.children) + ")"


def to_jsonpath(filter: Mapping[str, Any] | None) -> str | None:
    """The filter as a `strict` SQL/JSON path predicate over `event_document(...)`, true
    exactly when `matches(filter, document)` is (see the notes above); None for an empty
    filter (every event: nothing to evaluate), for an invalid one and for any construct that
    cannot be written exactly (the fan-out then evaluates it in Python).

    The one function that fills `Subscription.filter_jsonpath` (model field, data migration).
    Stored results outlive this code: a change to what it writes needs a data migration that
    recompiles the stored filters (as subscriptions/0014 does).
    """
    if not filter:
        return None
    try:
        node = parse(filter)
        compiled = "strict " + _jsonpath_node(node)
    except (ValidationError, _NotExpressible, RecursionError):
        return None
    # Exact float operands can be long (a subnormal has ~750 digits): beyond this, Python.
    return compiled if len(compiled) <= MAX_JSONPATH_LENGTH else None
