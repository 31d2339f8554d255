"""The one sanitiser for third-party text (webhooks_core.text)."""

from webhooks_core.text import REPLACEMENT, clean_json, clean_text, find_unstorable


def test_clean_text_replaces_nul_and_lone_surrogates():
    assert clean_text("ok\x00ok") == f"ok{REPLACEMENT}ok"
    assert clean_text("a\ud800b\udfffc") == f"a{REPLACEMENT}b{REPLACEMENT}c"
    # Astral characters are single code points in Python: left alone.
    assert clean_text("emoji \U0001f600") == "emoji \U0001f600"


def test_clean_text_returns_the_same_object_when_clean():
    value = "nothing to do"
    assert clean_text(value) is value


def test_clean_json_cleans_keys_strings_and_non_finite_numbers():
    dirty = {"k\x00": ["v\ud800", 1, 2.5, float("nan"), {"n": float("inf")}]}
    assert clean_json(dirty) == {f"k{REPLACEMENT}": [f"v{REPLACEMENT}", 1, 2.5, None, {"n": None}]}


def test_find_unstorable_names_the_place():
    assert (
        find_unstorable({"a": [1, "x\x00"]}, max_depth=32)
        == "/a/1 contains U+0000, which cannot be stored"
    )
    assert "U+D800" in find_unstorable({"s": "\ud800"}, max_depth=32)
    assert "NaN" in find_unstorable({"f": float("nan")}, max_depth=32).replace("nan", "NaN")
    assert find_unstorable({"ok": [1, {"b": "c"}]}, max_depth=32) is None


def test_find_unstorable_bounds_depth_without_deep_recursion():
    deep: list = []
    for _ in range(10_000):
        deep = [deep]
    assert "nested deeper than 64 levels" in find_unstorable(deep, max_depth=64)
    assert find_unstorable([[[]]], max_depth=3) is None
    assert find_unstorable([[[[]]]], max_depth=3) is not None
