"""System checks for the `WEBHOOKS` settings dict (`webhooks.E005`-`E007`, `W001`, `W002`,
`W018`) and for the event types declared in code (`webhooks.E021`).

A typo in a key or a wrong type would otherwise surface hours later, in a worker, as a retry
that never comes; `manage.py check` (run by `migrate` and `runserver`) reports it at once and
names the setting to fix. Registered in `apps.py`. This module checks the dict as a whole
(`E005`, and `E006` for a key no installed app declares) and the registry's own keys; the
validators below are shared with `deliveries.checks`, which checks the pipeline's keys (and
the Celery side, `W003`-`W005`), and `webhooks_portal.checks`, which checks the portal's.
"""

from __future__ import annotations

import difflib
import ipaddress
import numbers
import re
from collections.abc import Callable
from typing import Any, TypeGuard

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning

from webhooks_core.conf import DEFAULTS, WebhookSettings, webhook_settings

Validator = Callable[[Any], str | None]


def is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def number(*, minimum: float = 0, strict: bool = False, optional: bool = False) -> Validator:
    relation = "greater than" if strict else "at least"

    def validate(value: Any) -> str | None:
        if value is None and optional:
            return None
        ok = is_number(value) and (value > minimum if strict else value >= minimum)
        if ok:
            return None
        expected = f"a number {relation} {minimum:g}" + (" or None" if optional else "")
        return f"must be {expected}, not {value!r}"

    return validate


def integer(*, minimum: int, maximum: int | None = None) -> Validator:
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


def optional_integer(*, minimum: int) -> Validator:
    def validate(value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool) and value >= minimum:
            return None
        return f"must be an integer of at least {minimum} or None, not {value!r}"

    return validate


def tenant_key(value: Any) -> str | None:
    from .models import is_valid_tenant_key

    if is_valid_tenant_key(value):
        return None
    return f"must be 1 to 255 letters, digits, '.', '_', ':' or '-', not {value!r}"


def callable_path(value: Any) -> str | None:
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


def throttle_rates(value: Any) -> str | None:
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


def trusted_proxies(value: Any) -> str | None:
    """A number of proxies (0 or more) or a list of CIDRs."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return None
    if isinstance(value, list | tuple) and all(isinstance(cidr, str) for cidr in value):
        for cidr in value:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                return f"has {cidr!r}, which is not an IP network such as '10.0.0.0/8'"
        return None
    return f"must be a number of proxies (0 or more) or a list of CIDRs, not {value!r}"


def boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else f"must be True or False, not {value!r}"


def text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return None
    return f"must be a non-empty string, not {value!r}"


def optional_text(value: Any) -> str | None:
    return None if value is None else text(value)


def retry_schedule(value: Any) -> str | None:
    if (
        isinstance(value, list | tuple)
        and value
        and all(is_number(delay) and delay >= 0 for delay in value)
    ):
        return None
    return (
        "must be a non-empty list of non-negative numbers of seconds (one per attempt, the "
        f"first usually 0), not {value!r}"
    )


def fernet_keys(value: Any) -> str | None:
    from cryptography.fernet import Fernet

    keys = value.split(",") if isinstance(value, str) else value
    if not isinstance(keys, list | tuple):
        return f"must be a list of Fernet keys (or one comma-separated string), not {value!r}"
    for index, key in enumerate(keys):
        try:
            Fernet(str(key).strip())
        except (ValueError, TypeError):
            # Never the value itself: it is a secret.
            return f"[{index}] is not a Fernet key (urlsafe base64 of 32 bytes)"
    return None


# The registry's keys (webhooks_core/conf.py).
VALIDATORS: dict[str, Validator] = {
    # The API's list pages (both apps' lists, through webhooks_core.api.Pagination).
    "PAGE_SIZE": integer(minimum=1),
    "MAX_PAGE_SIZE": integer(minimum=1),
    "ALLOW_PRIVATE_NETWORKS": boolean,
    "ALLOW_HTTP": boolean,
    "SECRET_ROTATION_OVERLAP": number(),
    "ENCRYPTION_KEYS": fernet_keys,
    "DEFAULT_TENANT": tenant_key,
    "TENANT_RESOLVER": callable_path,
    "TENANT_MAX_SUBSCRIPTIONS": optional_integer(minimum=1),
    "TENANT_MAX_IN_FLIGHT": optional_integer(minimum=1),
    "MAX_RATE": number(strict=True, optional=True),
    "THROTTLE_RATES": throttle_rates,
    "TRUSTED_PROXIES": trusted_proxies,
    "DOWNGRADE_ERRORS": lambda value: (
        None if value in {"raise", "log"} else f'must be "raise" or "log", not {value!r}'
    ),
    "CONTRACTS_FILE": text,
}


def same_type_as_default(default: Any) -> Validator:
    """For keys declared without a validator: the default's type (anything if it is None)."""

    def validate(value: Any) -> str | None:
        if default is None or value is None:
            return None
        if isinstance(default, bool) or isinstance(value, bool):
            ok = isinstance(value, bool) and isinstance(default, bool)
        elif is_number(default):
            ok = is_number(value)
        else:
            ok = isinstance(value, type(default))
        return None if ok else f"must be of type {type(default).__name__}, not {value!r}"

    return validate


def webhooks_dict() -> dict[str, Any] | None:
    """`settings.WEBHOOKS` if it is a dict; None if it is unset or not a dict (`E005`)."""
    value = getattr(settings, "WEBHOOKS", None)
    return value if isinstance(value, dict) else None


def check_keys(defaults: dict[str, Any], validators: dict[str, Validator]) -> list[CheckMessage]:
    """`webhooks.E007` for each key of `defaults` that `settings.WEBHOOKS` sets to a value its
    validator refuses (the default's type for keys without one)."""
    value = webhooks_dict() or {}
    messages: list[CheckMessage] = []
    for key in defaults:
        if key not in value:
            continue
        validate = validators.get(key) or same_type_as_default(defaults[key])
        problem = validate(value[key])
        if problem:
            messages.append(
                Error(
                    f"settings.WEBHOOKS[{key!r}] {problem}.",
                    hint=f"Fix WEBHOOKS[{key!r}] or remove it to use the default "
                    f"({defaults[key]!r}).",
                    id="webhooks.E007",
                )
            )
    return messages


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
    known = WebhookSettings.known_keys()
    messages: list[CheckMessage] = []
    for key in value:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"Did you mean WEBHOOKS[{close[0]!r}]?" if close else None
            messages.append(
                Error(
                    f"settings.WEBHOOKS has an unknown key {key!r}.",
                    hint=hint or "The known keys are listed in docs/settings.md.",
                    id="webhooks.E006",
                )
            )
    messages += check_keys(DEFAULTS, VALIDATORS)
    messages += _unsafe_in_production(value)
    messages += _process_local_budgets()
    return messages


# Cache backends whose counts live in one process (or nowhere): each process then keeps its
# own budgets, and every limit is multiplied by the number of processes.
PROCESS_LOCAL_CACHES = {
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
}


def _process_local_budgets() -> list[CheckMessage]:
    """`webhooks.W018`: with DEBUG off, the throttles and the failed-login bound would count in
    a process-local default cache (Django's default when CACHES is not set)."""
    if settings.DEBUG:
        return []
    configured = webhook_settings.THROTTLE_RATES
    rates = {**DEFAULTS["THROTTLE_RATES"], **(configured if isinstance(configured, dict) else {})}
    if not any(rates.values()):
        return []
    backend = str(settings.CACHES.get("default", {}).get("BACKEND", ""))
    if backend not in PROCESS_LOCAL_CACHES:
        return []
    return [
        Warning(
            f"The default cache is {backend.rsplit('.', 1)[-1]}, local to each process, with "
            "DEBUG = False: the API's budgets (WEBHOOKS['THROTTLE_RATES']) and the failed-login "
            "bound count in each web process alone, so every limit is multiplied by the "
            "number of processes.",
            hint="Point CACHES['default'] at a cache every web process shares, e.g. Django's "
            "RedisCache (the reference project uses DJANGO_CACHE_URL, else the broker's Redis "
            "on its next database number).",
            id="webhooks.W018",
        )
    ]


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


def check_contracts(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """`webhooks.E021` for each problem of the event types declared in code: two declared
    versions without the down-converters between them, a converter for an undeclared version,
    a serializer drf-spectacular gives no schema for, an example that does not match."""
    from .contracts import contracts

    return [
        Error(
            problem,
            hint="See docs/contracts.md: one @downgrade per version step, and examples that "
            "match their version's serializer.",
            id="webhooks.E021",
        )
        for problem in contracts.problems()
    ]


def check_encryption_keys(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """`webhooks.E010` (with `check --deploy`): no key of its own encrypts the values at rest.

    Without `WEBHOOKS["ENCRYPTION_KEYS"]` the key is derived from SECRET_KEY: anyone with the
    settings file can then read the database's secrets, and changing SECRET_KEY makes every
    stored secret unreadable.
    """
    from webhooks_core.encryption import configured_keys

    if configured_keys():
        return []  # a malformed one is webhooks.E007
    return [
        Error(
            'settings.WEBHOOKS["ENCRYPTION_KEYS"] is not set: secrets stored in the database are '
            "encrypted with a key derived from SECRET_KEY.",
            hint='Set WEBHOOKS["ENCRYPTION_KEYS"] to a list of Fernet keys (the reference project '
            "reads WEBHOOKS_ENCRYPTION_KEYS, comma-separated); docs/security.md explains how to "
            "move the existing rows to it.",
            id="webhooks.E010",
        )
    ]


# Modules that moved when the shared core left the registry (docs/embedding.md, "Upgrading").
MOVED_MODULES = {
    **{
        f"subscriptions.{name}": f"webhooks_core.{name}"
        for name in [
            "access",
            "authentication",
            "api",
            "clientaddr",
            "conf",
            "encryption",
            "fields",
            "ids",
            "keyset",
            "lookups",
            "netguard",
            "search",
            "tenancy",
            "text",
            "throttling",
            "wire",
        ]
    },
    "deliveries.apidocs": "webhooks_core.apidocs",
    "deliveries.tenant_api": "subscriptions.tenant_api",
}
# Not listed: `portal` (a host's own app may have that name; a stale INSTALLED_APPS entry fails
# at start-up anyway, with ModuleNotFoundError).
# The settings where a host names our modules by dotted path.
_PATH_SETTINGS = (
    "INSTALLED_APPS",
    "AUTHENTICATION_BACKENDS",
    "REST_FRAMEWORK",
    "WEBHOOKS",
    "MIDDLEWARE",
    "LOGGING",
)


def _dotted_strings(value: Any) -> list[str]:
    """Every string inside `value` (dicts, lists, tuples, nested), keys included."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _dotted_strings(k) + _dotted_strings(v)]
    if isinstance(value, (list, tuple, set, frozenset)):
        return [s for item in value for s in _dotted_strings(item)]
    return []


def moved_path(value: str) -> str | None:
    """The new dotted path of `value` if it names a module of the previous layout (or a name
    inside one, e.g. "subscriptions.authentication.FailedLoginBackend"), else None."""
    for old, new in MOVED_MODULES.items():
        if value == old or value.startswith(old + "."):
            return new + value[len(old) :]
    return None


def check_moved_paths(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """webhooks.E040: a setting still names a module by its path of the previous layout (the
    shared core moved to `webhooks_core`, the portal to `webhooks_portal`). Found at start-up,
    rather than as an ImportError at a user's first login or request."""
    errors: list[CheckMessage] = []
    for name in _PATH_SETTINGS:
        for value in _dotted_strings(getattr(settings, name, None)):
            new = moved_path(value)
            if new is not None:
                errors.append(
                    Error(
                        f"{name} names {value!r}, a module path of the previous layout.",
                        hint=f"Use {new!r} (docs/embedding.md, 'Upgrading').",
                        id="webhooks.E040",
                    )
                )
    errors += _check_api_include()
    return errors


def _check_api_include() -> list[CheckMessage]:
    """webhooks.E041: the root URLconf mounts `deliveries.urls` itself, the API root of the
    previous layout: since the one include became `webhooks_core.urls`, that mounts the
    pipeline's API alone, without the registry's, the schema or the portal's links."""
    from django.urls import URLResolver, get_resolver

    def mounted(patterns: list[Any]) -> set[str]:
        found: set[str] = set()
        for entry in patterns:
            if isinstance(entry, URLResolver):
                name = getattr(entry.urlconf_name, "__name__", entry.urlconf_name)
                if isinstance(name, str):
                    found.add(name)
                if name != "webhooks_core.urls":
                    found |= mounted(entry.url_patterns)
        return found

    try:
        names = mounted(get_resolver().url_patterns)
    except Exception:
        return []  # a URLconf that does not load is reported by Django's own URL check
    if "deliveries.urls" in names and "webhooks_core.urls" not in names:
        return [
            Error(
                "The root URLconf includes 'deliveries.urls' and not 'webhooks_core.urls'.",
                hint=(
                    'Mount the API with path("api/", include("webhooks_core.urls")) instead: it '
                    "composes every installed app's API (docs/embedding.md, 'Upgrading')."
                ),
                id="webhooks.E041",
            )
        ]
    return []
