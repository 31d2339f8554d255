"""Third-party text made safe to store: the one sanitiser for what receivers and publishers send.

PostgreSQL `text` and `jsonb` cannot hold U+0000, and no database driver can encode a lone
surrogate (U+D800..U+DFFF without its pair: not a Unicode scalar value, so not encodable as
UTF-8, RFC 3629 §3). Both reach us easily: a receiver's answer decoded with `errors=
"surrogateescape"`, a header parsed as Latin-1, JSON with `"\\ud800"` or `"\\u0000"` escapes
(RFC 8259 §8.2 allows them syntactically). Every place that stores a string someone else
controls (response bodies, headers and reason phrases, error texts, descriptions) passes it
through `clean_text` or `clean_json` first, so one rule holds everywhere.

Event data is not cleaned silently: publishing refuses it instead (see `find_unstorable`), so
that a receiver never gets data that differs from what the producer sent.
"""

from __future__ import annotations

import math
import re
from typing import Any

REPLACEMENT = "\ufffd"

# NUL, and any surrogate code point: in a Python str a surrogate is always unpaired (a valid
# pair is decoded into one astral code point).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def clean_text(value: str) -> str:
    """`value` with NUL and lone surrogates replaced by U+FFFD; the same object if clean."""
    if _UNSTORABLE.search(value) is None:
        return value
    return _UNSTORABLE.sub(REPLACEMENT, value)


def clean_json(value: Any) -> Any:
    """A JSON-shaped value (dicts, lists, strings, numbers) with every string and key cleaned
    by `clean_text`. Non-finite floats become None (JSON has no NaN, RFC 8259 §6)."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(key)): clean_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def find_unstorable(value: Any, *, max_depth: int, _path: str = "", _depth: int = 0) -> str | None:
    """Why `value` cannot be stored as JSON exactly as given, or None if it can.

    Checks every string and key for NUL and lone surrogates, every float for NaN and
    Infinity, and the nesting depth against `max_depth` (containers within containers). The
    answer names the first offending place as a JSON-pointer-like path, e.g.
    ``"/items/3/name contains U+0000"``. Iterative depth is bounded by `max_depth`, so a
    10,000-level document is refused without recursing 10,000 times.
    """
    where = _path or "(root)"
    if isinstance(value, str):
        match = _UNSTORABLE.search(value)
        if match is not None:
            return f"{where} contains U+{ord(match.group()):04X}, which cannot be stored"
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return f"{where} is {value}, which JSON cannot represent"
    if isinstance(value, dict | list | tuple):
        if _depth >= max_depth:
            return f"{where} is nested deeper than {max_depth} levels"
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            path = f"{_path}/{key}"
            if isinstance(key, str) and _UNSTORABLE.search(key) is not None:
                return f"key {path} contains a character that cannot be stored"
            problem = find_unstorable(item, max_depth=max_depth, _path=path, _depth=_depth + 1)
            if problem is not None:
                return problem
    return None
