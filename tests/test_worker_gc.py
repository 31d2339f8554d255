"""The reference worker's garbage-collector tuning (webhooks_project/celery.py)."""

from __future__ import annotations

import gc

from webhooks_project.celery import WORKER_GC_THRESHOLD, tune_worker_gc


def test_a_ready_worker_freezes_its_start_up_heap_and_collects_less_often():
    before = gc.get_threshold()
    try:
        gc.unfreeze()
        tune_worker_gc()  # connected to celery's worker_ready
        assert gc.get_freeze_count() > 0  # start-up objects are no longer traversed
        assert gc.get_threshold() == WORKER_GC_THRESHOLD
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
