"""The reference project's Celery app; a host project uses its own (see docs/embedding.md)."""

import gc
import os

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webhooks_project.settings")

app = Celery("webhooks_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# The garbage collector in a busy worker. A threads worker with a hundred deliveries in flight
# allocates fast, so CPython's default first-generation threshold (700 allocations) runs a
# collection every few deliveries, and each full collection walks every object Django and
# Celery made at start-up. Freezing the start-up heap (gc.freeze(): those objects are never
# traversed again) and collecting the young generation less often cut the worker CPU per
# delivery by about a tenth to a fifth in bench/run.py scenario A (docs/operations.md). A host
# project's own Celery app can do the same; nothing in the apps depends on it.
WORKER_GC_THRESHOLD = (10_000, 10, 10)


@worker_ready.connect(weak=False, dispatch_uid="webhooks-project-worker-gc")
def tune_worker_gc(**kwargs: object) -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(*WORKER_GC_THRESHOLD)
