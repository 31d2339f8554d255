"""One filter, one answer: on generated filters and events, the test database (PostgreSQL's
jsonb or SQLite's JSON1, whichever DATABASE_URL names) selects exactly the events that
`subscriptions.filterlang.matches` accepts; on PostgreSQL every filter's compiled SQL/JSON path
(`to_jsonpath`, what the fan-out evaluates) gives `matches`' answer too; and the fan-out's own
routing query (`SubscriptionQuerySet.route`/`count_routed`) routes exactly by `matches`. Run
under both DATABASE_URLs."""

from __future__ import annotations

import json
import os

import pytest
from django.db import connection

from deliveries.models import Event
from subscriptions.filterlang import (
    event_document,
    filter_q,
    jsonpath_document,
    matches,
    to_jsonpath,
    validate_filter,
)
from subscriptions.models import Subscription, Tenant

hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies

KEYS = ["a", "0", "a-b", "_"]
# Characters a jsonpath literal must escape or could misread: quotes, backslash, controls,
# "$", "@", a line separator, astral and last-BMP code points (code-point order vs UTF-16).
TEXT = st.text(
    alphabet=[
        *["a", "B", "z", "0", " ", "é", "\uffff", "😀", '"', "\\", "'"],
        *["\n", "\x01", "\x7f", "$", "@", "\u2028", "*"],
    ],
    max_size=3,
)
NUMBERS = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.integers(min_value=-3, max_value=3),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.5, 1.0, -0.0, 2.5, 1e-7, 9007199254740993, 2**62, 2**63 - 1, -(2**63)]),
    st.sampled_from([1e300, -1e-300, 5e-324, 1.7976931348623157e308, 0.1, 1e16, 123456.789]),
)
# A small shared pool, drawn often, so that filters and events meet on the same values (a
# broad draw alone would almost never compare true with 1, or "1" with 1).
POOL = st.sampled_from([None, True, False, 0, 1, 1.0, 2.5, "", "a", "B", "1", "é"])
SCALARS = st.one_of(POOL, POOL, POOL, st.none(), st.booleans(), NUMBERS, TEXT)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=3)
    ),
    max_leaves=8,
)
DATA = st.dictionaries(st.sampled_from(KEYS), st.one_of(POOL, VALUES), max_size=2)
CHANNELS = st.lists(st.sampled_from(["eu", "us", "ap", "é"]), max_size=3, unique=True)
TYPES = st.sampled_from(["order.created", "order.paid", "Order", "user.x"])

DATA_PATHS = st.lists(st.sampled_from(KEYS), min_size=1, max_size=2).map(
    lambda keys: "data." + ".".join(keys)
)


def _conditions(path: str):
    if path == "type":
        operand = TYPES | TEXT
        return st.one_of(
            operand,
            st.dictionaries(
                st.sampled_from(["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"]),
                operand,
                min_size=1,
                max_size=2,
            ),
            st.fixed_dictionaries({"$in": st.lists(operand, min_size=1, max_size=3)}),
        )
    if path == "channels":
        name = st.sampled_from(["eu", "us", "ap", "é"])
        return st.one_of(
            name,
            st.dictionaries(st.sampled_from(["$eq", "$ne"]), name, min_size=1),
            st.dictionaries(
                st.sampled_from(["$in", "$nin"]),
                st.lists(name, min_size=1, max_size=3),
                min_size=1,
            ),
        )
    comparable = st.one_of(POOL.filter(lambda v: type(v) in (int, float, str)), NUMBERS, TEXT)
    return st.one_of(
        SCALARS,
        SCALARS,
        st.fixed_dictionaries(
            {},
            optional={
                "$eq": SCALARS,
                "$ne": SCALARS,
                "$gt": comparable,
                "$gte": comparable,
                "$lt": comparable,
                "$lte": comparable,
                "$exists": st.booleans(),
                "$in": st.lists(SCALARS, min_size=1, max_size=3),
                "$nin": st.lists(SCALARS, min_size=1, max_size=3),
            },
        ).filter(bool),
    )


CLAUSE = st.one_of(
    st.just("type"), st.just("channels"), DATA_PATHS, DATA_PATHS, DATA_PATHS
).flatmap(lambda path: _conditions(path).map(lambda condition: {path: condition}))


def _merge(clauses: list[dict]) -> dict:
    merged: dict = {}
    for clause in clauses:
        merged.update(clause)
    return merged


FILTERS = st.recursive(
    st.one_of(st.just({}), st.lists(CLAUSE, min_size=1, max_size=2).map(_merge)),
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda parts: {"$and": parts}),
        st.lists(inner, min_size=1, max_size=3).map(lambda parts: {"$or": parts}),
        inner.map(lambda part: {"$not": part}),
        st.tuples(CLAUSE, inner).map(lambda pair: {**pair[1], **pair[0]}),
    ),
    max_leaves=6,
)
EVENTS = st.lists(st.tuples(TYPES, CHANNELS, DATA), min_size=1, max_size=6)


def _literals(filter: dict, found: list) -> list:
    """(keys, value) for every value a filter compares a data path with."""
    for key, value in filter.items():
        if key in ("$and", "$or"):
            for part in value:
                _literals(part, found)
        elif key == "$not":
            _literals(value, found)
        elif key.startswith("data."):
            operands = value.values() if isinstance(value, dict) else [value]
            for operand in operands:
                for item in operand if isinstance(operand, list) else [operand]:
                    found.append((key.split(".")[1:], item))
    return found


def _near(value):
    """Values an evaluator could confuse with `value`: other kinds that look alike (True and
    1, "1" and 1, null), neighbours of a number, the same inside an array or an object."""
    near = [value, None, True, False, 0, 1, 1.0, "1", str(value), [value], {"a": value}]
    if type(value) in (int, float):
        near += [value + 1, value - 1, value + 0.5, float(value), -value]
    if isinstance(value, str):
        near += [value + "a", value[:-1], value.upper()]
    return st.sampled_from(near)


def _place(data: dict, keys: list[str], value) -> dict:
    data = json.loads(json.dumps(data))
    current = data
    for key in keys[:-1]:
        if not isinstance(current.get(key), dict):
            current[key] = {}
        current = current[key]
    current[keys[-1]] = value
    return data


def _aimed(draw, filters: list[dict], events: list) -> list:
    """Events with the filters' own operands, or values near them, at the filters' paths:
    where the evaluators could disagree."""
    aimed = []
    for keys, value in [pair for f in filters for pair in _literals(f, [])][:6]:
        for _ in range(3):
            type, channels, data = draw(st.sampled_from(events))
            aimed.append((type, channels, _place(data, keys, draw(_near(value)))))
    return aimed


def _wide_float(value) -> bool:
    """A float beyond 2**53 anywhere in `value`. The log search compares stored event data,
    where such a float is kept as its short decimal form (3.602879701896397e+16 for 2**55),
    not its binary value, so against an integer operand it can answer otherwise than
    matches(): the documented limit of `filter_q` (docs/filters.md). The fan-out's compiled
    filters are exact there (test_every_compiled_filter_answers_as_matches_does)."""
    if isinstance(value, float):
        return abs(value) >= 2**53
    if isinstance(value, dict):
        return any(_wide_float(item) for item in value.values())
    if isinstance(value, list):
        return any(_wide_float(item) for item in value)
    return False


@pytest.mark.django_db
@hypothesis.settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[
        hypothesis.HealthCheck.function_scoped_fixture,
        hypothesis.HealthCheck.too_slow,
    ],
    database=None,
)
@hypothesis.given(filters=st.lists(FILTERS, min_size=1, max_size=4), events=EVENTS, extra=st.data())
def test_the_database_selects_what_matches_accepts(filters, events, extra):
    for filter in filters:
        validate_filter(filter)
    events = events + _aimed(extra.draw, filters, events)
    hypothesis.assume(not any(_wide_float(data) for _type, _channels, data in events))
    rows = Event.objects.bulk_create(
        Event(type=type, channels=channels, data=data) for type, channels, data in events
    )
    try:
        for filter in filters:
            expected = {
                row.pk
                for row, (type, channels, data) in zip(rows, events, strict=True)
                if matches(filter, {"type": type, "channels": channels, "data": data})
            }
            ids = [row.pk for row in rows]
            found = set(
                Event.objects.filter(pk__in=ids)
                .filter(filter_q(filter))
                .values_list("pk", flat=True)
            )
            assert found == expected, filter
            if not filter:
                continue  # Q() is no condition: exclude(Q()) keeps every row, as Django does
            excluded = set(
                Event.objects.filter(pk__in=ids)
                .exclude(filter_q(filter))
                .values_list("pk", flat=True)
            )
            assert excluded == set(ids) - expected, filter
    finally:
        Event.objects.filter(pk__in=[row.pk for row in rows]).delete()


# Event data as publish() may store it: mostly objects, sometimes any JSON value.
ANY_DATA = st.one_of(DATA, DATA, DATA, VALUES)
DOCUMENTS = st.lists(st.tuples(TYPES, CHANNELS, ANY_DATA), min_size=1, max_size=6)


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SQL/JSON paths are PostgreSQL's (jsonb_path_match)"
)
@pytest.mark.django_db
@hypothesis.settings(
    max_examples=int(os.environ.get("FILTER_EXAMPLES", "1000")),
    deadline=None,
    suppress_health_check=[
        hypothesis.HealthCheck.function_scoped_fixture,
        hypothesis.HealthCheck.too_slow,
    ],
    database=None,
)
@hypothesis.given(
    filters=st.lists(FILTERS, min_size=1, max_size=4), events=DOCUMENTS, extra=st.data()
)
def test_every_compiled_filter_answers_as_matches_does(filters, events, extra):
    """compile (to_jsonpath) -> jsonb_path_match on PostgreSQL == matches(), for every valid
    filter: each one compiles (none is left to Python), and the answer is never unknown."""
    events = events + _aimed(
        extra.draw, filters, [e for e in events if isinstance(e[2], dict)] or [("t", [], {})]
    )
    documents = [event_document(type, channels, data) for type, channels, data in events]
    for filter in filters:
        validate_filter(filter)
        compiled = to_jsonpath(filter)
        if not filter:
            assert compiled is None
            continue
        assert compiled is not None, filter
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT jsonb_path_match(d, %s::jsonpath, '{}'::jsonb, true) "
                "FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS t(d, i) ORDER BY i",
                [compiled, "[" + ",".join(jsonpath_document(d) for d in documents) + "]"],
            )
            found = [row[0] for row in cursor.fetchall()]
        expected = [matches(filter, document) for document in documents]
        assert found == expected, (filter, compiled)


@pytest.mark.django_db
@hypothesis.settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[
        hypothesis.HealthCheck.function_scoped_fixture,
        hypothesis.HealthCheck.too_slow,
    ],
    database=None,
)
@hypothesis.given(
    filters=st.lists(FILTERS, min_size=1, max_size=4), events=DOCUMENTS, extra=st.data()
)
def test_the_fan_out_routes_by_filter_as_matches_does(filters, events, extra):
    """The fan-out's routing query (SQL on PostgreSQL, Python on SQLite) sends each event to
    exactly the subscriptions whose filters `matches` accepts, and counts them so."""
    events = events + _aimed(
        extra.draw, filters, [e for e in events if isinstance(e[2], dict)] or [("t", [], {})]
    )
    tenant = Tenant.objects.for_key("prop")
    subscriptions = Subscription.objects.bulk_create(
        Subscription(tenant=tenant, url=f"http://127.0.0.1:9/{i}", event_types=["*"], filter=filter)
        for i, filter in enumerate(filters)
    )
    try:
        routed = Subscription.objects.for_tenant("prop")
        for type, channels, data in events:
            document = event_document(type, channels, data)
            expected = {
                sub.pk
                for sub, filter in zip(subscriptions, filters, strict=True)
                if matches(filter, document)
            }
            route = routed.route(type, channels=channels, data=data)
            assert route is not None
            assert set(route[0]) == expected and route[1] == [], (filters, document)
            assert routed.count_routed(type, channels=channels, data=data) == len(expected)
    finally:
        Subscription.objects.filter(pk__in=[s.pk for s in subscriptions]).delete()
