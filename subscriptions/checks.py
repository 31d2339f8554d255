"""System checks for the `WEBHOOKS` settings dict (`webhooks.E005`-`E009`, `W001`, `W002`).

A typo in a key or a wrong type would otherwise surface hours later, in a worker, as a retry
that never comes; `manage.py check` (run by `migrate` and `runserver`) reports it at once and
names the setting to fix. Registered in `apps.py`; the Celery and beat checks (`E001`-`E004`)
live in `deliveries.checks`.
"""

from __future__ import annotations

import difflib
import numbers
import os
import re
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning

from .conf import DEFAULTS

Validator = Callable[[Any], str | None]


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _number(*, minimum: float = 0, strict: bool = False, optional: bool = False) -> Validator:
    relation = "greater than" if strict else "at least"

    def validate(value: Any) -> str | None:
        if value is None and optional:
            return None
        ok = _is_number(value) and (value > minimum if strict else value >= minimum)
        if ok:
            return None
        expected = f"a number {relation} {minimum:g}" + (" or None" if optional else "")
        return f"must be {expected}, not {value!r}"

    return validate


def _integer(*, minimum: int, maximum: int | None = None) -> Validator:
    def validate(value: Any) -> str | None:
        if (
            isinstance(value, int)
            and not isinstance(value, bool)
            and value >= minimum
            and (maximum is None or value <= maximum)
        ):
            return None
        if maximum is not None:
            return f"must be an integer from {minimum} to {maximum}, not {value!r}"
        return f"must be an integer of at least {minimum}, not {value!r}"

    return validate


def _optional_integer(*, minimum: int) -> Validator:
    def validate(value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool) and value >= minimum:
            return None
        return f"must be an integer of at least {minimum} or None, not {value!r}"

    return validate


def _tenant_key(value: Any) -> str | None:
    from .models import is_valid_tenant_key

    if is_valid_tenant_key(value):
        return None
    return f"must be 1 to 255 letters, digits, '.', '_', ':' or '-', not {value!r}"


def _callable_path(value: Any) -> str | None:
    """A dotted path to a callable (or the callable itself), importable now."""
    from django.utils.module_loading import import_string

    if callable(value):
        return None
    if not isinstance(value, str) or not value.strip():
        return f"must be a dotted path to a callable, not {value!r}"
    try:
        target = import_string(value)
    except ImportError as exc:
        return f"= {value!r} cannot be imported ({exc})"
    return None if callable(target) else f"= {value!r} is not callable"


def _throttle_rates(value: Any) -> str | None:
    if not isinstance(value, dict):
        return f"must be a dict of scope to rate, not {value!r}"
    unknown = sorted(set(value) - set(DEFAULTS["THROTTLE_RATES"]))
    if unknown:
        return f"has unknown scopes {unknown} (known: {sorted(DEFAULTS['THROTTLE_RATES'])})"
    for scope, rate in value.items():
        if rate is not None and not (
            isinstance(rate, str) and re.fullmatch(r"[1-9][0-9]*/(s|m|h|d)[a-z]*", rate)
        ):
            return f"[{scope!r}] must be like '10/minute' or None, not {rate!r}"
    return None


def _boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else f"must be True or False, not {value!r}"


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return None
    return f"must be a non-empty string, not {value!r}"


def _optional_text(value: Any) -> str | None:
    return None if value is None else _text(value)


def _ca_bundle(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and os.path.isfile(value)):
        return None
    return f"must be the path of a PEM file of CA certificates, or None; {value!r} is no file"


def _retry_schedule(value: Any) -> str | None:
    if (
        isinstance(value, list | tuple)
        and value
        and all(_is_number(delay) and delay >= 0 for delay in value)
    ):
        return None
    return (
        "must be a non-empty list of non-negative numbers of seconds (one per attempt, the "
        f"first usually 0), not {value!r}"
    )


VALIDATORS: dict[str, Validator] = {
    "RETRY_SCHEDULE": _retry_schedule,
    "RETRY_JITTER": _number(),
    "CONNECT_TIMEOUT": _number(strict=True),
    "TIMEOUT": _number(strict=True),
    "CA_BUNDLE": _ca_bundle,
    "MAX_RESPONSE_BODY_BYTES": _integer(minimum=0),
    "MAX_PAYLOAD_BYTES": _integer(minimum=1),
    # Deeper data would cost deep recursion in JSON Schema validation and encoders.
    "MAX_PAYLOAD_DEPTH": _integer(minimum=1, maximum=128),
    "PAGE_SIZE": _integer(minimum=1),
    "MAX_PAGE_SIZE": _integer(minimum=1),
    "ALLOW_PRIVATE_NETWORKS": _boolean,
    "ALLOW_HTTP": _boolean,
    "SECRET_ROTATION_OVERLAP": _number(),
    "DISABLE_AFTER": _number(strict=True),
    "RETENTION_DAYS": _number(strict=True),
    "MAX_COUNTDOWN": _number(strict=True, optional=True),
    "STALE_SENDING_AFTER": _number(strict=True, optional=True),
    "SWEEP_GRACE": _number(),
    "BATCH_SIZE": _integer(minimum=1),
    "DELIVERY_QUEUE": _text,
    "RETRY_QUEUE": _text,
    "MAINTENANCE_QUEUE": _text,
    "CLOUDEVENTS_SOURCE": _text,
    "USER_AGENT": _text,
    "MAX_IN_FLIGHT": _number(strict=True, optional=True),
    "IN_FLIGHT_RETRY_DELAY": _number(strict=True),
    "FAN_OUT_INLINE_MAX": _integer(minimum=0),
    "ENQUEUE_CHUNK": _integer(minimum=1),
    "METRICS_ENABLED": _boolean,
    "METRICS_TOKEN": _optional_text,
    "METRICS_WINDOW": _integer(minimum=1),
    "DEFAULT_TENANT": _tenant_key,
    "TENANT_RESOLVER": _callable_path,
    "TENANT_MAX_SUBSCRIPTIONS": _optional_integer(minimum=1),
    "TENANT_MAX_IN_FLIGHT": _optional_integer(minimum=1),
    "THROTTLE_RATES": _throttle_rates,
}


def _same_type_as_default(key: str) -> Validator:
    """For keys added to DEFAULTS without a validator here: the default's type, or None."""
    default = DEFAULTS[key]

    def validate(value: Any) -> str | None:
        if default is None or value is None:
            return None
        if isinstance(default, bool) or isinstance(value, bool):
            ok = isinstance(value, bool) and isinstance(default, bool)
        elif _is_number(default):
            ok = _is_number(value)
        else:
            ok = isinstance(value, type(default))
        return None if ok else f"must be of type {type(default).__name__}, not {value!r}"

    return validate


def check_webhooks_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    value = getattr(settings, "WEBHOOKS", None)
    if value is None:
        return []
    if not isinstance(value, dict):
        return [
            Error(
                f"settings.WEBHOOKS must be a dict, not {type(value).__name__}.",
                hint="Set WEBHOOKS = {...} with the keys listed in docs/settings.md.",
                id="webhooks.E005",
            )
        ]
    messages: list[CheckMessage] = []
    for key in value:
        if key not in DEFAULTS:
            close = difflib.get_close_matches(str(key), DEFAULTS, n=1)
            hint = f"Did you mean WEBHOOKS[{close[0]!r}]?" if close else None
            messages.append(
                Error(
                    f"settings.WEBHOOKS has an unknown key {key!r}.",
                    hint=hint or "The known keys are listed in docs/settings.md.",
                    id="webhooks.E006",
                )
            )
            continue
        validate = VALIDATORS.get(key) or _same_type_as_default(key)
        problem = validate(value[key])
        if problem:
            messages.append(
                Error(
                    f"settings.WEBHOOKS[{key!r}] {problem}.",
                    hint=f"Fix WEBHOOKS[{key!r}] or remove it to use the default "
                    f"({DEFAULTS[key]!r}).",
                    id="webhooks.E007",
                )
            )
    messages += _timeout_order(value)
    messages += _countdown_within_visibility(value)
    messages += _unsafe_in_production(value)
    return messages


def _timeout_order(value: dict[str, Any]) -> list[CheckMessage]:
    connect = value.get("CONNECT_TIMEOUT", DEFAULTS["CONNECT_TIMEOUT"])
    total = value.get("TIMEOUT", DEFAULTS["TIMEOUT"])
    valid = VALIDATORS["CONNECT_TIMEOUT"](connect) is None and VALIDATORS["TIMEOUT"](total) is None
    if valid and connect > total:
        return [
            Error(
                f"settings.WEBHOOKS['CONNECT_TIMEOUT'] ({connect}) is longer than "
                f"WEBHOOKS['TIMEOUT'] ({total}), the total allowed for one attempt.",
                hint="Lower WEBHOOKS['CONNECT_TIMEOUT'] or raise WEBHOOKS['TIMEOUT'].",
                id="webhooks.E008",
            )
        ]
    return []


def _countdown_within_visibility(value: dict[str, Any]) -> list[CheckMessage]:
    countdown = value.get("MAX_COUNTDOWN")
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", None) or {}
    visibility = options.get("visibility_timeout", 3600) if isinstance(options, dict) else 3600
    if _is_number(countdown) and _is_number(visibility) and countdown >= visibility:
        # Redis hands an unacknowledged message to another worker after the visibility
        # timeout; a retry parked that long in a worker would be delivered twice.
        return [
            Error(
                f"settings.WEBHOOKS['MAX_COUNTDOWN'] ({countdown} s) is not below the broker's "
                f"visibility timeout ({visibility} s): long retries would run twice.",
                hint="Lower WEBHOOKS['MAX_COUNTDOWN'] (None means 60 s), or raise "
                "CELERY_BROKER_TRANSPORT_OPTIONS['visibility_timeout'].",
                id="webhooks.E009",
            )
        ]
    return []


def _unsafe_in_production(value: dict[str, Any]) -> list[CheckMessage]:
    if settings.DEBUG:
        return []
    messages: list[CheckMessage] = []
    if value.get("ALLOW_PRIVATE_NETWORKS") is True:
        messages.append(
            Warning(
                "settings.WEBHOOKS['ALLOW_PRIVATE_NETWORKS'] is on with DEBUG = False: any "
                "subscriber can make your workers send requests into your own network "
                "(databases, cloud metadata at 169.254.169.254).",
                hint="Remove WEBHOOKS['ALLOW_PRIVATE_NETWORKS'] in production; it is meant for "
                "tests and local demos.",
                id="webhooks.W001",
            )
        )
    if value.get("ALLOW_HTTP") is True:
        messages.append(
            Warning(
                "settings.WEBHOOKS['ALLOW_HTTP'] is on with DEBUG = False: payloads and "
                "signatures can go over plain http://, readable on the way.",
                hint="Remove WEBHOOKS['ALLOW_HTTP'] in production; it is meant for tests and "
                "local demos.",
                id="webhooks.W002",
            )
        )
    return messages
