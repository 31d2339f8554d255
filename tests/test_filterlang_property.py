"""One filter, one answer: on generated filters and events, the test database (PostgreSQL's
jsonb or SQLite's JSON1, whichever DATABASE_URL names) selects exactly the events that
`subscriptions.filterlang.matches` accepts. Run under both DATABASE_URLs."""

from __future__ import annotations

import pytest

from deliveries.models import Event
from subscriptions.filterlang import filter_q, matches, validate_filter

hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies

KEYS = ["a", "0"]
TEXT = st.text(alphabet=["a", "B", "z", "0", " ", "é", "\uffff", "😀", '"', "\\"], max_size=3)
NUMBERS = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.integers(min_value=-3, max_value=3),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.5, 1.0, -0.0, 2.5, 1e-7, 9007199254740993, 2**62]),
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
@hypothesis.given(filters=st.lists(FILTERS, min_size=1, max_size=4), events=EVENTS)
def test_the_database_selects_what_matches_accepts(filters, events):
    for filter in filters:
        validate_filter(filter)
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
