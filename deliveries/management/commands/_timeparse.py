"""Time arguments of the operations commands: ISO 8601 or a relative age such as 90m, 2h, 1d."""

from __future__ import annotations

import datetime as dt
import re

from django.core.management.base import CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

RELATIVE = re.compile(r"^(\d+)\s*([smhd])\Z")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_when(value: str, option: str, now: dt.datetime | None = None) -> dt.datetime:
    """`2026-11-27T18:00:00Z`, `2026-11-27 18:00` (UTC/current zone) or `2h` (two hours ago)."""
    now = now or timezone.now()
    text = value.strip()
    match = RELATIVE.fullmatch(text)
    if match:
        return now - dt.timedelta(**{UNITS[match.group(2)]: int(match.group(1))})
    try:
        parsed = parse_datetime(text)
    except ValueError:
        parsed = None
    if parsed is None:
        raise CommandError(
            f"{option}: {value!r} is not a time; use ISO 8601 (2026-11-27T18:00:00Z) or an "
            "age such as 30m, 2h, 1d."
        )
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed)
    return parsed
