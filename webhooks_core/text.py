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
import unicodedata
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

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


def path_segment(key: object) -> str:
    """`key` as one segment of a JSON pointer (RFC 6901 §3: `~` as `~0`, `/` as `~1`), with NUL
    and lone surrogates written as `\\uXXXX`: the path is shown in an answer and in logs, which
    could not encode the characters themselves."""
    text = str(key).replace("~", "~0").replace("/", "~1")
    return _UNSTORABLE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


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
            path = f"{_path}/{path_segment(key)}"
            if isinstance(key, str):
                match = _UNSTORABLE.search(key)
                if match is not None:
                    return (
                        f"the key at {path} contains U+{ord(match.group()):04X}, "
                        "which cannot be stored"
                    )
            problem = find_unstorable(item, max_depth=max_depth, _path=path, _depth=_depth + 1)
            if problem is not None:
                return problem
    return None


# --- Text that people name things with (descriptions, names): it reaches e-mail subjects,
# operator webhooks and log lines, where a line break would forge a header or a log record.


def control_character(value: str, *, allow: str = "") -> str | None:
    """The first control character in `value` (Unicode categories Cc, Cs, Zl and Zp: C0 and
    C1 controls including CR, LF and NUL, lone surrogates, and the line and paragraph
    separators), ignoring those in `allow`; None if there is none."""
    for char in value:
        if char not in allow and unicodedata.category(char) in _CONTROL_CATEGORIES:
            return char
    return None


_CONTROL_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})


def _refuse_controls(value: object, allow: str) -> None:
    char = control_character(str(value), allow=allow)
    if char is not None:
        raise ValidationError(
            _("Control characters such as line breaks are not allowed here (found U+%(code)04X).")
            % {"code": ord(char)},
            code="control_character",
        )


def validate_one_line(value: object) -> None:
    """Model and serializer validator of names and short descriptions: no control character
    at all (no line break, tab or NUL). Raises django.core.exceptions.ValidationError."""
    _refuse_controls(value, "")


def validate_multiline(value: object) -> None:
    """As `validate_one_line`, but line feeds and tabs are allowed (long descriptions, such as
    an event type's, shown as paragraphs and never put into a header)."""
    _refuse_controls(value, "\n\t")
