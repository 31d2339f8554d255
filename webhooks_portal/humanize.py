"""Small wording helpers for the portal's pages."""

from __future__ import annotations

from django.utils.translation import ngettext


def duration(seconds: float) -> str:
    """'1 day', '1 day 2 hours', '1 minute 30 seconds': the largest two units that are not zero."""
    remaining = int(seconds)
    units = (
        (86400, lambda n: ngettext("%(n)d day", "%(n)d days", n)),
        (3600, lambda n: ngettext("%(n)d hour", "%(n)d hours", n)),
        (60, lambda n: ngettext("%(n)d minute", "%(n)d minutes", n)),
        (1, lambda n: ngettext("%(n)d second", "%(n)d seconds", n)),
    )
    parts = []
    for size, word in units:
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(word(count) % {"n": count})
    if not parts:
        return ngettext("%(n)d second", "%(n)d seconds", 0) % {"n": 0}
    return " ".join(parts[:2])
