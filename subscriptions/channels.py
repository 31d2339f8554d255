"""Channel names: what events carry and subscriptions select (DESIGN.md, Flow "Channels").

A subscription with channels receives only events carrying at least one of them; a
subscription without channels receives events of every channel (as in Svix).
"""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

MAX_CHANNELS = 10
CHANNEL_MAX_LENGTH = 128
# Letters, digits and `. _ : -`: safe in URLs, query strings and logs unquoted.
CHANNEL_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}\Z")


def validate_channels(value: Any) -> list[str]:
    """`value` as a list of distinct channel names (order kept, repeats dropped).

    A channel name is 1 to 128 letters, digits, '.', '_', ':' or '-'; at most MAX_CHANNELS of
    them. Raises django.core.exceptions.ValidationError naming the first bad entry.
    """
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise ValidationError(_("Channels are a list of names."), code="invalid_channels")
    names: list[Any] = (
        list(dict.fromkeys(value)) if all(isinstance(v, str) for v in value) else list(value)
    )
    if len(names) > MAX_CHANNELS:
        raise ValidationError(
            _("At most %(max)d channels.") % {"max": MAX_CHANNELS}, code="invalid_channels"
        )
    for index, name in enumerate(names):
        if not isinstance(name, str) or not CHANNEL_RE.match(name):
            raise ValidationError(
                _("[%(index)d]: a channel name is 1 to 128 letters, digits, '.', '_', ':' or '-'.")
                % {"index": index},
                code="invalid_channels",
            )
    return names


def validate_channel_field(value: Any) -> None:
    """Model field validator: `validate_channels` without the result."""
    validate_channels(value)
