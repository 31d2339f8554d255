"""System checks of the pipeline: its `WEBHOOKS` keys (`webhooks.E007`-`E009`), a Redis for
the shared counters (`webhooks.E030`) and the Celery side of a host project
(`webhooks.W003`-`W005`).

Deliveries run in the host's own Celery app through `@shared_task`. If that app is missing,
points at no broker or never imports our tasks, publishing still "works" and nothing is ever
sent. These checks say so and name what to fix. They are warnings: a project that has just
added the apps must be able to `migrate` before its Celery set-up is finished, and a deployment
pipeline that wants them fatal runs `manage.py check --deploy --fail-level WARNING`.
Registered in `apps.py`. Only Celery's public API is used: `app_or_default()`, `app.conf`,
`app.loader.import_default_modules()` and the loader's `task_modules`.
"""

from __future__ import annotations

import ipaddress
import os
import threading
from typing import Any
from urllib.parse import urlsplit

from celery.app import app_or_default
from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning

from subscriptions.checks import (
    Validator,
    boolean,
    check_keys,
    integer,
    is_number,
    number,
    optional_integer,
    optional_text,
    retry_schedule,
    text,
    webhooks_dict,
)
from subscriptions.secrets import validate_secret

from .conf import DEFAULTS, celery_broker_url, is_redis_url, redis_form, webhook_settings

TASKS_MODULE = "deliveries.tasks"

# Importing the app's task modules makes Celery's Django fixup run the system checks again
# (it does so before a worker imports tasks); this flag stops that inner run at this check.
_running = threading.local()


# --- WEBHOOKS: the pipeline's keys (deliveries/conf.py) -------------------------------------


def ca_bundle(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and os.path.isfile(value)):
        return None
    return f"must be the path of a PEM file of CA certificates, or None; {value!r} is no file"


def optional_url(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and value.startswith(("https://", "http://"))):
        return None
    return f"must be an http:// or https:// URL or None, not {value!r}"


def optional_secret(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        return f"must be a signing secret ('whsec_...') or None, not {value!r}"
    try:
        validate_secret(value)
    except ValueError as exc:
        return f"must be a signing secret or None: {exc}"
    return None


def egress_proxy(value: Any) -> str | None:
    if value is None:
        return None
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises ValueError for a port that is no number in range
        ok = parts.scheme in {"http", "https"} and bool(parts.hostname)
    except (ValueError, TypeError, AttributeError):
        ok = False
    if ok:
        return None
    return f"must be an http:// proxy URL such as 'http://10.0.0.5:3128', or None, not {value!r}"


def ip_list(value: Any) -> str | None:
    if not isinstance(value, list | tuple):
        return f"must be a list of IP addresses or networks, not {value!r}"
    for item in value:
        try:
            ipaddress.ip_network(str(item), strict=False)
        except ValueError:
            return f"must hold IP addresses or networks only; {item!r} is neither"
    return None


VALIDATORS: dict[str, Validator] = {
    "RETRY_SCHEDULE": retry_schedule,
    "RETRY_JITTER": number(),
    "CONNECT_TIMEOUT": number(strict=True),
    "TIMEOUT": number(strict=True),
    "CA_BUNDLE": ca_bundle,
    "EGRESS_PROXY": egress_proxy,
    "EGRESS_IPS": ip_list,
    "MAX_RESPONSE_BODY_BYTES": integer(minimum=0),
    "MAX_PAYLOAD_BYTES": integer(minimum=1),
    # Deeper data would cost deep recursion in JSON Schema validation and encoders.
    "MAX_PAYLOAD_DEPTH": integer(minimum=1, maximum=128),
    "DISABLE_AFTER": number(strict=True),
    "RETENTION_DAYS": number(strict=True),
    "PRUNE_TIME_BUDGET": number(strict=True),
    "MAX_COUNTDOWN": number(strict=True, optional=True),
    "STALE_SENDING_AFTER": number(strict=True, optional=True),
    "SWEEP_GRACE": number(),
    "BATCH_SIZE": integer(minimum=1),
    "DELIVERY_QUEUE": text,
    "RETRY_QUEUE": text,
    "MAINTENANCE_QUEUE": text,
    "CLOUDEVENTS_SOURCE": text,
    "CLOUDEVENTS_DATASCHEMA": text,
    "USER_AGENT": text,
    "MAX_IN_FLIGHT": number(strict=True, optional=True),
    "TENANT_MAX_QUEUED": optional_integer(minimum=1),
    "IN_FLIGHT_RETRY_DELAY": number(strict=True),
    "FAN_OUT_INLINE_MAX": integer(minimum=0),
    "ENQUEUE_CHUNK": integer(minimum=1),
    "METRICS_ENABLED": boolean,
    "METRICS_TOKEN": optional_text,
    "METRICS_WINDOW": integer(minimum=1),
    "NOTICE_EMAIL": boolean,
    "NOTICE_WEBHOOK_URL": optional_url,
    "NOTICE_WEBHOOK_SECRET": optional_secret,
    "NOTICE_COOLDOWN": number(),
    "NOTICE_HOURLY_CAP": optional_integer(minimum=0),
    "BULK_RETRY_MAX": integer(minimum=1),
}


def redis_url(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and is_redis_url(redis_form(value))):
        return None
    return f"must be a redis://, rediss:// or unix:// URL or None, not {value!r}"


VALIDATORS["REDIS_URL"] = redis_url


def check_pipeline_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    value = webhooks_dict()
    if value is None:
        return [*_counters_redis()]  # not a dict: subscriptions' check reports webhooks.E005
    return [
        *check_keys(DEFAULTS, VALIDATORS),
        *_timeout_order(value),
        *_countdown_within_visibility(value),
        *_lease_covers_the_deadline(value),
        *_counters_redis(),
    ]


def _counters_redis() -> list[CheckMessage]:
    """webhooks.E030: the in-flight caps count in a Redis shared by every worker; with none
    (the broker is RabbitMQ and REDIS_URL is unset) they could not hold, so it is an error,
    not a silent "no cap". Eager mode and a missing broker or app are W003/W004's business."""
    app = loaded_celery_app()
    if app is None or app.conf.task_always_eager or not celery_broker_url():
        return []
    if webhook_settings.redis_url is not None:
        return []
    scheme = celery_broker_url().split("://")[0]
    return [
        Error(
            f"No Redis for the in-flight counters: the broker is {scheme}:// and "
            "settings.WEBHOOKS['REDIS_URL'] is not set, so the caps on deliveries in flight "
            "(per endpoint and per tenant) could not be applied.",
            hint="Set WEBHOOKS['REDIS_URL'] to a Redis every worker reaches, e.g. "
            "'redis://127.0.0.1:6379/2' (reference project: env WEBHOOKS_REDIS_URL).",
            id="webhooks.E030",
        )
    ]


# The least margin a claim's lease keeps beyond the attempt's total deadline (signing and
# recording run outside that deadline, after the claim).
LEASE_MARGIN_MIN = 10


def _lease_covers_the_deadline(value: dict[str, Any]) -> list[CheckMessage]:
    stale = value.get("STALE_SENDING_AFTER")
    total = value.get("TIMEOUT", DEFAULTS["TIMEOUT"])
    if is_number(stale) and is_number(total) and stale < total + LEASE_MARGIN_MIN:
        return [
            Error(
                f"settings.WEBHOOKS['STALE_SENDING_AFTER'] ({stale} s) is shorter than "
                f"WEBHOOKS['TIMEOUT'] ({total} s) plus {LEASE_MARGIN_MIN} s: the sweep would "
                "release a claim whose POST may still be in flight, and it would be sent twice.",
                hint="Leave WEBHOOKS['STALE_SENDING_AFTER'] unset (TIMEOUT + CONNECT_TIMEOUT + "
                f"30 s) or set it to at least TIMEOUT + {LEASE_MARGIN_MIN}.",
                id="webhooks.E020",
            )
        ]
    return []


def check_database_routing(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """The pipeline's models must be written to one alias: the claim loads a delivery with its
    event and subscription in one statement, and every working read goes to that alias
    (`router.db_for_write`). Both apps on a non-default alias work; split, they are refused."""
    from django.db import router

    from subscriptions.models import EventType, Subscription, Tenant

    from .models import Delivery, DeliveryAttempt, Event, WorkerClock

    models = (Delivery, DeliveryAttempt, Event, WorkerClock, Subscription, Tenant, EventType)
    aliases = {model._meta.label: router.db_for_write(model) for model in models}
    if len(set(aliases.values())) <= 1:
        return []
    where = ", ".join(f"{label} → {alias!r}" for label, alias in aliases.items())
    return [
        Error(
            f"The database routers write the webhook models to different databases ({where}).",
            hint="Route the 'subscriptions' and 'deliveries' apps to one alias (any alias: "
            "reads of their working rows go where they are written, see docs/embedding.md).",
            id="webhooks.E031",
        )
    ]


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
    if is_number(countdown) and is_number(visibility) and countdown >= visibility:
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


# --- Celery ----------------------------------------------------------------------------------


def loaded_celery_app() -> Any | None:
    """The Celery app `@shared_task` binds to in this process, or None if there is none.

    Without an app of its own, Celery falls back to a built-in "default" app with no
    configuration and no Django fixup (it would send to amqp://guest@localhost): that counts
    as none.
    """
    app = app_or_default()
    if app.main == "default" and not app.fixups:
        return None
    return app


def check_celery(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if getattr(_running, "active", False):
        return []
    _running.active = True
    try:
        return _check_celery()
    finally:
        _running.active = False


def _check_celery() -> list[CheckMessage]:
    app = loaded_celery_app()
    if app is None:
        return [
            Warning(
                "No Celery app is loaded, so deliveries would be handed to Celery's "
                "unconfigured fallback app and never reach your workers.",
                hint="Create your project's Celery app in <project>/celery.py with "
                "app.config_from_object('django.conf:settings', namespace='CELERY') and "
                "app.autodiscover_tasks(), and import it in <project>/__init__.py (see "
                "docs/embedding.md).",
                id="webhooks.W004",
            )
        ]
    messages: list[CheckMessage] = []
    # Eager mode (some hosts' tests) runs tasks in-process and needs no broker.
    if not app.conf.task_always_eager and not app.conf.broker_url:
        messages.append(
            Warning(
                "No Celery broker is configured; deliveries cannot be queued.",
                hint="Set CELERY_BROKER_URL (a setting or an environment variable), e.g. "
                "'redis://127.0.0.1:6379/0' (see docs/embedding.md).",
                id="webhooks.W003",
            )
        )
    problem = _task_modules_problem(app)
    if problem:
        messages.append(
            Warning(
                f"The Celery app {app.main!r} {problem}, so its workers would reject every "
                "delivery message as an unregistered task.",
                hint="Call app.autodiscover_tasks() in your Celery module, or add "
                f"{TASKS_MODULE!r} to CELERY_IMPORTS.",
                id="webhooks.W005",
            )
        )
    return messages


def _task_modules_problem(app: Any) -> str:
    """Why a worker of `app` would not import our tasks module; empty if it would.

    A worker imports its task modules with `app.loader.import_default_modules()` (autodiscovery
    and CELERY_IMPORTS); doing the same here and reading which modules it imported is exact,
    whatever this process imported otherwise.
    """
    try:
        app.loader.import_default_modules()
    except Exception as exc:  # the host's own task modules may fail to import here
        return f"cannot import its task modules ({type(exc).__name__}: {exc})"
    if TASKS_MODULE not in app.loader.task_modules:
        return f"does not import {TASKS_MODULE}"
    return ""
