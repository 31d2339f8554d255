"""System checks for the Celery side of a host project (`webhooks.E001`-`E004`).

Deliveries run in the host's own Celery app through `@shared_task`. If that app is missing,
points at no broker, never imports our tasks, or beat does not schedule the sweep, publishing
still "works" and nothing is ever sent (or lost messages are never found again). These checks
say so at `manage.py check` time and name the setting to fix. Registered in `apps.py`.
"""

from __future__ import annotations

import weakref
from typing import Any

from celery import signals
from django.conf import settings
from django.core.checks import CheckMessage, Error

from .schedule import BEAT_SCHEDULE

TASKS_MODULE = "deliveries.tasks"


def loaded_celery_app() -> Any | None:
    """The Celery app `@shared_task` binds to in this process, or None if there is none.

    Without an app of its own, Celery falls back to a built-in "default" app with no
    configuration (amqp://guest@localhost): that counts as none. Read without calling
    `celery.current_app`, which would create that fallback as a side effect.
    """
    from celery import _state

    app = getattr(_state._tls, "current_app", None) or _state.default_app
    if app is None or (app.main == "default" and not app.fixups):
        return None
    return app


def check_celery(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    app = loaded_celery_app()
    messages: list[CheckMessage] = []
    if app is None:
        messages.append(
            Error(
                "No Celery app is loaded, so deliveries would be handed to Celery's unconfigured "
                "fallback app and never reach your workers.",
                hint="Create your project's Celery app in <project>/celery.py with "
                "app.config_from_object('django.conf:settings', namespace='CELERY') and "
                "import it in <project>/__init__.py (see docs/embedding.md).",
                id="webhooks.E002",
            )
        )
        broker = getattr(settings, "CELERY_BROKER_URL", None)
    else:
        # Eager mode (some hosts' tests) runs tasks in-process and needs no broker.
        broker = "eager" if app.conf.task_always_eager else app.conf.broker_url
        if not _imports_tasks(app):
            messages.append(
                Error(
                    f"The Celery app {app.main!r} does not import {TASKS_MODULE}, so its "
                    "workers would reject every delivery message as an unregistered task.",
                    hint="Call app.autodiscover_tasks() in your Celery module, or add "
                    f"{TASKS_MODULE!r} to CELERY_IMPORTS.",
                    id="webhooks.E003",
                )
            )
    if not broker:
        messages.insert(
            0,
            Error(
                "No Celery broker is configured; deliveries cannot be queued.",
                hint="Set CELERY_BROKER_URL, e.g. 'redis://127.0.0.1:6379/0' (see "
                "docs/embedding.md).",
                id="webhooks.E001",
            ),
        )
    messages += _check_beat_schedule(app)
    return messages


def _imports_tasks(app: Any) -> bool:
    modules = {*(app.conf.imports or ()), *(app.conf.include or ())}
    return TASKS_MODULE in modules or _autodiscovers(app)


def _autodiscovers(app: Any) -> bool:
    """Whether `app.autodiscover_tasks()` was called so that a worker imports our tasks.

    Autodiscovery is lazy: it connects a promise of `app._autodiscover_tasks(packages,
    related_name)` to `import_modules`, which a worker sends at startup. That promise is looked
    for here; `packages=None` means every installed app.
    """
    for _key, receiver in signals.import_modules.receivers:
        if isinstance(receiver, weakref.ReferenceType):
            receiver = receiver()
        fun = getattr(receiver, "fun", None)
        if getattr(fun, "__self__", None) is not app:
            continue
        if getattr(fun, "__name__", "") != "_autodiscover_tasks":
            continue
        packages, related_name = (*tuple(receiver.args), None, "tasks")[:2]
        if related_name != "tasks":
            continue
        if packages is None or callable(packages) or "deliveries" in packages:
            return True
    return False


def _check_beat_schedule(app: Any | None) -> list[CheckMessage]:
    if app is not None:
        schedule = app.conf.beat_schedule
    else:
        schedule = getattr(settings, "CELERY_BEAT_SCHEDULE", None)
    scheduled = {
        entry.get("task") for entry in (schedule or {}).values() if isinstance(entry, dict)
    }
    missing = sorted(
        entry["task"] for entry in BEAT_SCHEDULE.values() if entry["task"] not in scheduled
    )
    if not missing:
        return []
    return [
        Error(
            "The Celery beat schedule lacks " + ", ".join(missing) + ": without the sweep, "
            "messages lost by the broker and retries parked in the database are never sent.",
            hint="Set CELERY_BEAT_SCHEDULE = {**deliveries.schedule.BEAT_SCHEDULE, ...your "
            "entries}. If you create these periodic tasks in the database yourself, add "
            "'webhooks.E004' to SILENCED_SYSTEM_CHECKS.",
            id="webhooks.E004",
        )
    ]
