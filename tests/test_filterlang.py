"""The filter language (subscriptions.filterlang): validation with paths, and its semantics in
Python and in SQL on examples chosen to pin each rule; tests/test_filterlang_property.py
compares the evaluators on generated filters."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError

from deliveries.models import Delivery, Event
from subscriptions import filterlang
from subscriptions.filterlang import filter_q, matches, validate_filter
from tests.factories import make_subscription


def event(data=None, type="order.created", channels=()):
    return {"type": type, "channels": list(channels), "data": data or {}}


def message(filter):
    with pytest.raises(ValidationError) as caught:
        validate_filter(filter)
    return " ".join(caught.value.messages)


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "filter, where",
    [
        ([], "(top): a filter is a JSON object"),
        ({"data.amount": {"$gt": True}}, "data.amount > $gt: $gt compares with a number"),
        ({"$or": [{"type": "a"}, {"data.x": {"$foo": 1}}]}, "$or[1] > data.x > $foo: unknown"),
        ({"$and": []}, "$and: takes a list of 1 to"),
        ({"$not": 3}, "$not: a filter is a JSON object"),
        ({"amount": 1}, "amount: a path is type, channels or data."),
        ({"data": 1}, "data: a path is type, channels or data."),
        ({"data.a b": 1}, "data.a b: each key of a path"),
        ({"data.a": [1, 2]}, "data.a: a list is not a value to compare with; use $in."),
        ({"data.a": {"x": 1}}, "data.a > x: unknown operator"),
        ({"data.a": {}}, "data.a: an operator object names at least one operator"),
        ({"data.a": {"$in": [1, [2]]}}, "data.a > $in > [1]: a value here is a string"),
        ({"data.a": {"$in": []}}, "data.a > $in: $in takes a list of 1 to"),
        ({"data.a": {"$exists": 1}}, "data.a > $exists: $exists takes true or false."),
        ({"type": 5}, "type: type is compared with strings."),
        ({"channels": {"$gt": "a"}}, "channels > $gt: channels take $eq, $ne, $in and $nin"),
        ({"channels": {"$exists": True}}, "channels > $exists: channels is always present"),
        ({"data.a": 2**63}, "data.a: integers are within the signed 64-bit range"),
        ({"data.a": "x" * 1025}, "data.a: strings are at most 1024 characters"),
        ({"data.a": "x\x00"}, "data.a: strings cannot hold U+0000"),
        ({"$foo": 1}, "$foo: unknown operator here"),
    ],
)
def test_a_malformed_filter_is_refused_naming_its_path(filter, where):
    assert where in message(filter)


def test_filters_are_bounded_in_depth_conditions_and_size():
    deep: dict = {"type": "a"}
    for _ in range(filterlang.MAX_DEPTH):
        deep = {"$not": deep}
    validate_filter(deep)  # at the bound
    assert "nest at most" in message({"$not": deep})
    many = {f"data.k{i}": i for i in range(filterlang.MAX_CONDITIONS)}
    validate_filter(many)
    assert "at most 50 conditions" in message({**many, "data.one_more": 1})
    wide = {"data.a": {"$in": ["x" * 1000] * 10}}
    assert "at most 8192 bytes" in message(wide)
    # A pathologically deep value is refused, not a RecursionError (a 500 in the API).
    nested: object = 1
    for _ in range(5000):
        nested = [nested]
    assert "nest" in message({"data.a": {"$in": nested}}) or "a value here" in message(
        {"data.a": {"$in": nested}}
    )


def test_a_valid_filter_comes_back_unchanged():
    filter = {"type": {"$in": ["a.b", "c"]}, "data.x.y": {"$gte": 1.5, "$lt": 9}, "$not": {}}
    assert validate_filter(filter) is filter
    assert validate_filter({}) == {}


# -- semantics, in Python and in SQL ----------------------------------------------------------

CASES = [
    # (filter, data, matches?) -- one line per rule in the module docstring
    ({"data.a": 1}, {"a": 1.0}, True),  # numbers by value
    ({"data.a": 1}, {"a": True}, False),  # a boolean is not a number
    ({"data.a": True}, {"a": 1}, False),
    ({"data.a": "1"}, {"a": 1}, False),  # kinds never mix
    ({"data.a": None}, {"a": None}, True),  # null is present
    ({"data.a": None}, {}, False),  # missing is not null
    ({"data.a": {"$exists": True}}, {"a": None}, True),
    ({"data.a": {"$exists": False}}, {}, True),
    ({"data.a.b": {"$exists": True}}, {"a": [{"b": 1}]}, False),  # arrays are not walked
    ({"data.a.0": 1}, {"a": [1]}, False),  # nor indexed
    ({"data.a.0": 1}, {"a": {"0": 1}}, True),  # "0" is an object key
    ({"data.a.b": 1}, {"a": "b"}, False),  # through a scalar: missing
    ({"data.a": {"$ne": 1}}, {}, True),  # $ne holds for a missing path
    ({"data.a": {"$ne": 1}}, {"a": "1"}, True),
    ({"data.a": {"$ne": 1}}, {"a": 1}, False),
    ({"data.a": {"$gt": 5}}, {"a": "9"}, False),  # comparisons need the same kind
    ({"data.a": {"$gt": 5}}, {"a": True}, False),
    ({"$not": {"data.a": {"$gt": 5}}}, {"a": "9"}, True),  # never unknown: NOT is exact
    ({"data.a": {"$gt": 5}}, {"a": 5.5}, True),
    ({"data.a": {"$gte": 5, "$lt": 6}}, {"a": 5}, True),
    ({"data.a": {"$lte": 2**62}}, {"a": 2**62 + 1}, False),  # exact for 64-bit integers
    ({"data.a": {"$gt": "B"}}, {"a": "a"}, True),  # code points: "a" > "B"
    ({"data.a": {"$gt": "z"}}, {"a": "é"}, True),  # U+00E9 > U+007A (not a locale's order)
    ({"data.a": {"$lt": "😀"}}, {"a": "\uffff"}, True),  # astral above the BMP
    ({"data.a": 1}, {"a": [1]}, False),  # an array never equals a scalar
    ({"data.a": {"$in": [1, "x", None]}}, {"a": None}, True),
    ({"data.a": {"$nin": [1, "x"]}}, {}, True),
    ({"data.a": {"$nin": [1, "x"]}}, {"a": "x"}, False),
    ({"$or": [{"data.a": 1}, {"data.b": 2}]}, {"b": 2}, True),
    ({"$and": [{"data.a": 1}, {"data.b": 2}]}, {"b": 2}, False),
    ({"type": "order.created", "data.a": 1}, {"a": 1}, True),
    ({"type": {"$in": ["x", "order.created"]}}, {}, True),
    ({"type": {"$gt": "order.a"}}, {}, True),
    ({"type": {"$ne": "order.created"}}, {}, False),
]


@pytest.mark.parametrize("filter, data, expected", CASES)
def test_python_semantics(filter, data, expected):
    assert matches(filter, event(data)) is expected


@pytest.mark.django_db
def test_sql_gives_the_python_answers_on_this_database():
    rows = [Event.objects.create(type="order.created", data=data) for _, data, _ in CASES]
    for (filter, data, expected), row in zip(CASES, rows, strict=True):
        found = Event.objects.filter(pk=row.pk).filter(filter_q(filter)).exists()
        assert found is expected, (filter, data)
        negated = Event.objects.filter(pk=row.pk).exclude(filter_q(filter)).exists()
        assert negated is not expected, (filter, data)


CHANNEL_CASES = [
    ({"channels": "eu"}, ["eu", "us"], True),
    ({"channels": "eu"}, [], False),
    ({"channels": {"$ne": "eu"}}, ["us"], True),
    ({"channels": {"$ne": "eu"}}, ["eu"], False),
    ({"channels": {"$in": ["ap", "us"]}}, ["us"], True),
    ({"channels": {"$in": ["ap", "us"]}}, ["eu"], False),
    ({"channels": {"$nin": ["ap", "us"]}}, ["eu"], True),
    ({"channels": {"$nin": ["ap", "us"]}}, [], True),
]


@pytest.mark.django_db
@pytest.mark.parametrize("filter, channels, expected", CHANNEL_CASES)
def test_channels_are_a_set_of_names(filter, channels, expected):
    assert matches(filter, event(channels=channels)) is expected
    row = Event.objects.create(type="t", data={}, channels=channels)
    assert Event.objects.filter(pk=row.pk).filter(filter_q(filter)).exists() is expected


@pytest.mark.django_db
def test_filter_q_reaches_the_event_through_a_prefix():
    subscription = make_subscription("http://127.0.0.1:9/hook")
    wanted = Event.objects.create(type="order.created", data={"total": 120}, channels=["eu"])
    other = Event.objects.create(type="order.created", data={"total": 5}, channels=["eu"])
    for e in (wanted, other):
        Delivery.objects.create(event=e, subscription=subscription)
    found = Delivery.objects.filter(
        filter_q({"data.total": {"$gte": 100}, "channels": "eu"}, prefix="event__")
    )
    assert [d.event_id for d in found] == [wanted.pk]
    # Combined with other conditions, as the log search does.
    assert not Delivery.objects.filter(
        filter_q({"data.total": {"$gte": 100}}, prefix="event__"), event__type="x"
    ).exists()


@pytest.mark.django_db
def test_an_empty_filter_selects_everything():
    Event.objects.create(type="a", data={})
    assert filter_q(None) == filter_q({})
    assert Event.objects.filter(filter_q({})).count() == 1
    assert matches({}, event()) and matches(None, event())


def test_matches_refuses_an_invalid_filter():
    with pytest.raises(ValidationError):
        matches({"data.a": {"$gt": None}}, event({"a": 1}))


def test_messages_serialise_for_field_errors():
    """DRF turns the ValidationError into a field error; its text is plain JSON-able text."""
    text = message({"data.a": {"$gt": []}})
    assert json.loads(json.dumps(text)) == text


# -- compiled to a SQL/JSON path (PostgreSQL's fan-out) ---------------------------------------

JSONPATH_CASES = [
    *CASES,
    # Numbers by exact value, as Python compares ints and floats (a float's shortest repr,
    # 3.602879701896397e+16 for 2**55, is another decimal number).
    ({"data.a": 2**55}, {"a": float(2**55)}, True),
    ({"data.a": 36028797018963970}, {"a": float(2**55)}, False),
    ({"data.a": {"$lt": 36028797018963970}}, {"a": float(2**55)}, True),
    ({"data.a": 0.1}, {"a": 0.1}, True),
    ({"data.a": {"$lt": 0.1}}, {"a": 0.1}, False),
    ({"data.a": {"$gt": 0.1}}, {"a": 0.30000000000000004 - 0.2}, True),
    ({"data.a": 5e-324}, {"a": 5e-324}, True),
    ({"data.a": {"$gt": 0}}, {"a": 5e-324}, True),
    ({"data.a": -0.0}, {"a": 0}, True),
    ({"data.a": {"$lt": -(2**63)}}, {"a": -(2**63) - 1}, True),
    ({"data.a": 1.7976931348623157e308}, {"a": 1.7976931348623157e308}, True),
    # Strings a jsonpath literal must escape; code points, not UTF-16 units or a collation.
    ({"data.a": '"\\\n\u2028$@\x01'}, {"a": '"\\\n\u2028$@\x01'}, True),
    ({"data.a": {"$gt": "\uffff"}}, {"a": "😀"}, True),
    ({"data.a-b._": "x"}, {"a-b": {"_": "x"}}, True),
    ({"data.a": {"$eq": "x"}}, {"a": {"x": "x"}}, False),
    ({"data.a": {"$ne": None}}, {"a": None}, False),
    ({"data.a": {"$lt": 1}}, {"a": None}, False),
    ({"$not": {"$or": [{"data.a": {"$lt": 1}}, {"data.b": {"$exists": True}}]}}, {"a": []}, True),
    ({"$and": [{}]}, {}, True),
    ({"$or": [{}, {"data.a": 1}]}, {}, True),
]


@pytest.mark.parametrize("filter, data, expected", JSONPATH_CASES)
def test_python_semantics_of_the_compiled_cases(filter, data, expected):
    assert matches(filter, event(data)) is expected


@pytest.mark.django_db
def test_compiled_filters_give_the_python_answers_on_postgresql():
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("SQL/JSON paths are PostgreSQL's; SQLite's fan-out evaluates in Python")
    cases = [(f, event(data), expected) for f, data, expected in JSONPATH_CASES] + [
        (f, event(channels=channels), expected) for f, channels, expected in CHANNEL_CASES
    ]
    cases.append(({"data.a": 1}, {"type": "t", "channels": [], "data": [1]}, False))
    cases.append(({"data.a": {"$exists": False}}, {"type": "t", "channels": [], "data": 7}, True))
    with connection.cursor() as cursor:
        for filter, document, expected in cases:
            compiled = filterlang.to_jsonpath(filter)
            assert compiled is not None and compiled.startswith("strict "), filter
            assert "like_regex" not in compiled and "starts with" not in compiled
            cursor.execute(
                "SELECT jsonb_path_match(%s::jsonb, %s::jsonpath, '{}'::jsonb, true)",
                [filterlang.jsonpath_document(document), compiled],
            )
            assert cursor.fetchone()[0] is expected, (filter, document, compiled)


def test_what_cannot_be_compiled_is_left_to_python():
    assert filterlang.to_jsonpath({}) is None  # every event: nothing to evaluate
    assert filterlang.to_jsonpath(None) is None
    assert filterlang.to_jsonpath({"data.a": {"$gt": None}}) is None  # invalid
    # Beyond MAX_JSONPATH_LENGTH (exact float operands are long): Python evaluates it.
    tiny = [5e-324 * (i + 1) for i in range(100)]
    assert filterlang.to_jsonpath({"data.a": {"$in": tiny}}) is None
    assert filterlang.jsonpath_document({"data": {"a": float("nan")}}) is None
    # What jsonb cannot hold: the fan-out evaluates every filter in Python instead.
    assert filterlang.jsonpath_document({"data": {"a": "\x00"}}) is None
    assert filterlang.jsonpath_document({"data": {"\ud800": 1}}) is None
    assert filterlang.jsonpath_document({"data": {"a": [0.1, 2**70]}}) == (
        '{"data":{"a":[0.1000000000000000055511151231257827021181583404541015625,'
        "1180591620717411303424]}}"
    )
