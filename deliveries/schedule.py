"""The periodic tasks the pipeline needs, registered with the host's Celery beat.

Nothing to configure: when Django starts (`DeliveriesConfig.ready()`), `register_periodic_tasks`
adds these entries to the beat schedule of the process's Celery app through Celery's public
`app.add_periodic_task`, so whichever beat the host runs (the default scheduler, or
django-celery-beat's ``DatabaseScheduler``, which copies them into the database when beat starts
and lets them be tuned in the admin afterwards) sends them. An entry of the host's own for the
same task, under any name (e.g. ``CELERY_BEAT_SCHEDULE = {**BEAT_SCHEDULE, ...}`` from earlier
versions, or a different interval), is kept as it is and ours is not added. Run exactly one beat
process. A worker must consume the maintenance queue (``WEBHOOKS["MAINTENANCE_QUEUE"]``), e.g.
``celery -A proj worker -Q webhooks,webhooks.retry,webhooks.maintenance``.

The entries:

``webhooks-sweep`` (every 15 s): ``deliveries.services.sweeping.sweep``. The database is the
    source of truth and this is what makes it so: it fans out events whose fan-out never ran,
    releases deliveries whose worker died mid-attempt (claim older than
    ``STALE_SENDING_AFTER``), and re-enqueues due deliveries whose message is missing (Redis
    restarted, broker down at publish time, or a wait too long for a Celery countdown that was
    parked in the database). Its interval plus ``SWEEP_GRACE`` is how late a parked retry or a
    lost message can be: keep it well below the shortest parked wait (``MAX_COUNTDOWN``).
    ``expires`` drops a sweep that could not run within a minute: the next one does its work.
``webhooks-disable-dead-endpoints`` (every 5 min): disables subscriptions that failed without a
    single success for ``DISABLE_AFTER`` seconds (default 5 days).
``webhooks-release-notices`` (every minute): ``deliveries.services.notices.release_due``: a
    `recovered` notice whose ``NOTICE_COOLDOWN`` has passed without a new failure is made final
    (signalled, emailed and posted).
``webhooks-roll-up`` (every minute): ``deliveries.services.rollups.roll_up`` counts the attempts
    started since its watermark into hourly buckets per endpoint and tenant, which the health
    figures (tenant list, dashboard, endpoint lists, 24 h and 7 days) read instead of the
    attempts. Those figures are therefore up to this interval plus ``STALE_SENDING_AFTER`` old.
    A run stops after 45 s; the next continues from the watermark.
``webhooks-prune`` (hourly): deletes finished deliveries, their attempts and orphaned events
    older than ``RETENTION_DAYS``, in batches of ``BATCH_SIZE`` short statements.

Every task is safe to run twice at once (guarded updates, idempotent fan-out), so a beat that is
briefly duplicated during a deploy sends nothing twice.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from celery import current_app

from . import dispatch
from .conf import webhook_settings

BEAT_SCHEDULE: dict[str, dict] = {
    "webhooks-sweep": {
        "task": dispatch.SWEEP,
        "schedule": 15.0,
        "options": {"expires": 60, "queue": "webhooks.maintenance"},
    },
    "webhooks-disable-dead-endpoints": {
        "task": dispatch.DISABLE_DEAD_ENDPOINTS,
        "schedule": 300.0,
        "options": {"expires": 600, "queue": "webhooks.maintenance"},
    },
    "webhooks-release-notices": {
        "task": dispatch.RELEASE_NOTICES,
        "schedule": 60.0,
        "options": {"expires": 120, "queue": "webhooks.maintenance"},
    },
    "webhooks-roll-up": {
        "task": dispatch.ROLL_UP,
        "schedule": 60.0,
        "options": {"expires": 60, "queue": "webhooks.maintenance"},
    },
    "webhooks-prune": {
        "task": dispatch.PRUNE,
        "schedule": 3600.0,
        "options": {"expires": 3600, "queue": "webhooks.maintenance"},
    },
}


def sweep_interval(app: Any = None) -> float:
    """Seconds between two sweeps: the interval of the beat entry that runs the sweep task in
    `app`'s schedule (default: Celery's current app), whatever its name (a host may tune it),
    else ours. A crontab-like entry counts as ours (15 s): no fixed interval to read."""
    app = app if app is not None else current_app
    schedule = BEAT_SCHEDULE["webhooks-sweep"]["schedule"]
    for entry in (app.conf.beat_schedule or {}).values():
        if isinstance(entry, dict) and entry.get("task") == dispatch.SWEEP:
            schedule = entry.get("schedule", schedule)
            break
    # A number, a timedelta, or Celery's `schedule` (its public `run_every` is a timedelta).
    schedule = getattr(schedule, "run_every", schedule)
    if isinstance(schedule, dt.timedelta):
        return schedule.total_seconds()
    if isinstance(schedule, int | float):
        return float(schedule)
    return float(BEAT_SCHEDULE["webhooks-sweep"]["schedule"])


def register_periodic_tasks(app: Any) -> list[str]:
    """Add to `app`'s beat schedule the entries of `BEAT_SCHEDULE` whose task it lacks; returns
    the names added now.

    Celery's `add_periodic_task`, on the app's configuration: at once if the app is configured,
    and again whenever it is (re)configured (`on_after_configure`), so that entries are added
    after the host's own `CELERY_BEAT_SCHEDULE` is read and never replace them. The queue is the
    maintenance queue of the settings (``WEBHOOKS["MAINTENANCE_QUEUE"]``).
    """
    app.on_after_configure.connect(_on_configure, weak=False, dispatch_uid=__name__)
    return _add_missing(app) if app.configured else []


def _on_configure(sender: Any, **kwargs: Any) -> None:
    _add_missing(sender)


def _add_missing(app: Any) -> list[str]:
    # A copy: Celery adds entries in place, and the host's settings dict is not ours to change.
    app.conf.beat_schedule = dict(app.conf.beat_schedule or {})
    scheduled = {
        entry.get("task") for entry in app.conf.beat_schedule.values() if isinstance(entry, dict)
    }
    added = []
    for name, entry in BEAT_SCHEDULE.items():
        if entry["task"] in scheduled:
            continue
        options = {**entry["options"], "queue": webhook_settings.MAINTENANCE_QUEUE}
        app.add_periodic_task(entry["schedule"], app.signature(entry["task"]), name=name, **options)
        added.append(name)
    return added
