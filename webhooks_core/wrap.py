"""Where long names and URLs may wrap: after '.', '/', '-' or '_', never inside a word.

`breakable(text)` escapes `text` and puts a `<wbr>` after each run of those characters, so
"invoice.payment_succeeded" can wrap as "invoice." / "payment_" / "succeeded" and a URL at its
slashes, never as "invoice.pa" / "id". Pair it with CSS `overflow-wrap: break-word` (which
breaks inside a word only when one piece alone is wider than its box, and, unlike `anywhere`,
does not let a table squeeze the column below its longest piece); never `word-break:
break-all`. Used by the portal's templates (`|breakable`), the notices' templates and the
admin's columns.
"""

from __future__ import annotations

import re

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

_AFTER = re.compile(r"([./_-]+)")


def breakable(value: object) -> SafeString:
    """`value` as escaped HTML with `<wbr>` after each run of '.', '/', '-' or '_' that is
    followed by more text; "" for None."""
    if value is None:
        return mark_safe("")
    pieces = _AFTER.split(str(value))
    html: list[str] = []
    for index, piece in enumerate(pieces):
        html.append(escape(piece))
        if index % 2 and any(pieces[index + 1 :]):
            html.append("<wbr>")
    return mark_safe("".join(html))
