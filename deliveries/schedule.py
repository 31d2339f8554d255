"""The periodic tasks the pipeline needs, as a Celery beat schedule.

A host project adopts it with `CELERY_BEAT_SCHEDULE = {**BEAT_SCHEDULE, ...}`; with
django-celery-beat's DatabaseScheduler the entries are copied into the database on beat start
and can be tuned in the admin afterwards.
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
