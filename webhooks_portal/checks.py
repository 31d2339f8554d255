"""System checks of the portal's `WEBHOOKS` keys (`webhooks.E007`), registered in
`PortalConfig.ready()`. The dict as a whole and unknown keys (`E005`, `E006`) are checked by
`subscriptions.checks`, which counts the portal's keys once this app is loaded."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage

from subscriptions.checks import Validator, check_keys, integer

from .conf import DEFAULTS


def frame_ancestors(value: Any) -> str | None:
    # Each source becomes part of a header: a ';' or a line break would inject directives.
    if (
        isinstance(value, list | tuple)
        and value
        and all(isinstance(s, str) and s.strip() and not set(s) & set(";,\r\n") for s in value)
    ):
        return None
    return (
        "must be a non-empty list of CSP source expressions (\"'self'\", "
        f'"https://app.example.com", "\'none\'"), not {value!r}'
    )


VALIDATORS: dict[str, Validator] = {
    "PORTAL_LINK_MAX_AGE": integer(minimum=1),
    "PORTAL_SESSION_AGE": integer(minimum=1),
    "PORTAL_FRAME_ANCESTORS": frame_ancestors,
}


def check_portal_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """`webhooks.E007` for each portal key set to a value its validator refuses."""
    return check_keys(DEFAULTS, VALIDATORS)
