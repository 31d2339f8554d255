"""The periodic tasks the pipeline needs, as a Celery beat schedule.

Adopting it in a host project (one line in its settings)::

    from deliveries.schedule import BEAT_SCHEDULE

    CELERY_BEAT_SCHEDULE = {**BEAT_SCHEDULE}  # plus the host's own entries

With django-celery-beat's ``DatabaseScheduler`` the entries are copied into the database when
beat starts and can be tuned in the admin afterwards. Run exactly one beat process. A worker
must consume the ``webhooks.maintenance`` queue (``WEBHOOKS["MAINTENANCE_QUEUE"]``), e.g.
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
``webhooks-prune`` (hourly): deletes finished deliveries, their attempts and orphaned events
    older than ``RETENTION_DAYS``, in batches of ``BATCH_SIZE`` short statements.

Every task is safe to run twice at once (guarded updates, idempotent fan-out), so a beat that is
briefly duplicated during a deploy sends nothing twice.
"""

BEAT_SCHEDULE: dict[str, dict] = {
    "webhooks-sweep": {
        "task": "deliveries.tasks.sweep",
        "schedule": 15.0,
        "options": {"expires": 60, "queue": "webhooks.maintenance"},
    },
    "webhooks-disable-dead-endpoints": {
        "task": "deliveries.tasks.disable_dead_endpoints",
        "schedule": 300.0,
        "options": {"expires": 600, "queue": "webhooks.maintenance"},
    },
    "webhooks-prune": {
        "task": "deliveries.tasks.prune",
        "schedule": 3600.0,
        "options": {"expires": 3600, "queue": "webhooks.maintenance"},
    },
}
