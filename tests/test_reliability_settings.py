"""The Celery settings of the reference project reach Celery 5.7 under the names it reads."""

from __future__ import annotations

import pytest
from celery.app.defaults import NAMESPACES, flatten
from django.conf import settings

from deliveries.conf import DEFAULTS
from deliveries.schedule import BEAT_SCHEDULE
from webhooks_project import settings as project_settings

# Read by Celery's Django fixup under this exact name, not a documented Celery setting.
FIXUP_NAMES = {"CELERY_DB_REUSE_MAX"}


def celery_app():
    from webhooks_project.celery import app

    return app


def test_every_celery_setting_is_a_name_celery_knows():
    known = {name for name, _ in flatten(NAMESPACES)}
    ours = [name for name in dir(project_settings) if name.startswith("CELERY_")]
    unknown = [name for name in ours if name not in FIXUP_NAMES and name[7:].lower() not in known]
    assert ours and unknown == []


def test_crash_safety_settings_reach_the_app():
    conf = celery_app().conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.worker_cancel_long_running_tasks_on_connection_loss is False
    assert conf.worker_enable_soft_shutdown_on_idle is True
    # Soft shutdown leaves a running attempt time to finish: longer than its total timeout.
    assert conf.worker_soft_shutdown_timeout > DEFAULTS["TIMEOUT"]
    assert conf.get("CELERY_DB_REUSE_MAX") == 1000  # what celery.fixups.django reads


def test_publishing_gives_up_fast_with_redis_down():
    conf = celery_app().conf
    options = conf.broker_transport_options
    assert options["socket_connect_timeout"] <= 2 and options["socket_timeout"] <= 2
    assert conf.task_publish_retry_policy["max_retries"] <= 1
    assert conf.broker_connection_timeout <= 2


def test_the_beat_schedule_is_installed_and_its_tasks_exist():
    app = celery_app()
    app.loader.import_default_modules()
    # No setting: the app registered its entries itself when Django started.
    assert not hasattr(settings, "CELERY_BEAT_SCHEDULE")
    for name, entry in BEAT_SCHEDULE.items():
        installed = app.conf.beat_schedule[name]
        assert (installed["task"], installed["schedule"]) == (entry["task"], entry["schedule"])
        assert installed["options"]["queue"] == DEFAULTS["MAINTENANCE_QUEUE"]
        assert installed["options"]["expires"] == entry["options"]["expires"]
        assert entry["task"] in app.tasks
    # The sweep runs often enough that a parked wait is not late by much more than its grace.
    assert BEAT_SCHEDULE["webhooks-sweep"]["schedule"] <= DEFAULTS["SWEEP_GRACE"]


@pytest.mark.django_db
def test_maintenance_tasks_run(broker):
    from deliveries import tasks

    # Called the way beat's message runs them: in-process, they must simply complete.
    tasks.sweep.apply().get()
    tasks.disable_dead_endpoints.apply().get()
    tasks.prune.apply().get()
