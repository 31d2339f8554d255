"""One clock: workers whose clocks disagree with the database's, by minutes, never send twice
and never write a false history; each measures its offset and says so (log, metric, dashboard).

The real thing: Celery workers under libfaketime (Debian package `faketime`), one 5 minutes
behind and one 5 minutes ahead of the worker that sweeps, and a receiver that takes seconds to
answer. PostgreSQL only: SQLite's `now()` is each process's own clock (one host, one clock).
"""

from __future__ import annotations

import glob
import time

import pytest
from django.db import connection
from django.db.models.functions import Now

from deliveries import dispatch
from deliveries.conf import webhook_settings
from deliveries.models import Delivery, DeliveryAttempt, DeliveryStatus, ErrorKind, WorkerClock
from deliveries.services import clock, publish
from tests.factories import make_subscription
from tests.receiver import Reply

SKEW_SECONDS = 300


def _faketime_env(offset: str) -> dict[str, str]:
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1"))
    if not found:
        pytest.skip("libfaketime is not installed (apt-get install faketime)")
    # A fixed offset from the real time; monotonic clocks left alone (durations stay true).
    return {"LD_PRELOAD": found[0], "FAKETIME": offset, "FAKETIME_DONT_FAKE_MONOTONIC": "1"}


@pytest.mark.integration
def test_skewed_workers_send_once_and_write_a_truthful_history(start_worker, receiver, caplog):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite's now() is each process's own clock: one host, one clock")
    overrides = {"TIMEOUT": 20, "CONNECT_TIMEOUT": 2, "SWEEP_GRACE": 0, "CLOCK_OFFSET_LIMIT": 5}
    queue, retry_queue = webhook_settings.DELIVERY_QUEUE, webhook_settings.RETRY_QUEUE
    # First attempts go to the worker 5 minutes behind, retries to the one 5 minutes ahead;
    # the sweep runs on a third worker whose clock is right.
    behind = start_worker(queues=queue, overrides=overrides, extra_env=_faketime_env("-5m"))
    ahead = start_worker(queues=retry_queue, overrides=overrides, extra_env=_faketime_env("+5m"))
    sweeper = start_worker(queues=webhook_settings.MAINTENANCE_QUEUE, overrides=overrides)

    paths = [f"/slow/{n}" for n in range(3)]
    for path in paths:
        # Each attempt takes 4 s: the first is refused (503), the retry accepted.
        receiver.script(path, Reply(503, delay=4), Reply(200, delay=4))
        make_subscription(receiver.url(path), ["order.created"])
    event = publish("order.created", {"n": 1})

    # Sweep again and again while the POSTs are in flight: a claim judged by the sweeper's clock
    # against a worker's would be released at once (behind) and the attempt sent again.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        dispatch.send(dispatch.SWEEP, (), queue=webhook_settings.MAINTENANCE_QUEUE)
        finished = Delivery.objects.filter(event=event, status=DeliveryStatus.SUCCEEDED).count()
        if finished == len(paths):
            break
        time.sleep(0.5)
    time.sleep(2)  # a duplicate would have started by now

    deliveries = list(Delivery.objects.filter(event=event).order_by("pk"))
    assert [d.status for d in deliveries] == [DeliveryStatus.SUCCEEDED] * len(paths)
    for path in paths:
        sent = receiver.requests_to(path)
        assert len(sent) == 2, path  # the refused attempt and the retry: no duplicate POST
        assert len({r.headers["webhook-timestamp"] for r in sent}) == 2
    event.refresh_from_db()
    for delivery in deliveries:
        history = list(DeliveryAttempt.objects.filter(delivery=delivery).order_by("number"))
        assert [a.response_status for a in history] == [503, 200]
        assert not [a for a in history if a.error_kind == ErrorKind.INTERRUPTED]
        assert delivery.attempts == 2
        assert history[0].started_at < history[1].started_at <= delivery.delivered_at
        assert delivery.delivered_at >= delivery.created_at >= event.created_at
        assert delivery.delivered_at >= history[1].started_at
    # webhook-timestamp is the sending worker's clock (documented): 5 minutes off either way.
    first, retry = receiver.requests_to(paths[0])
    assert int(retry.headers["webhook-timestamp"]) - int(first.headers["webhook-timestamp"]) > 500

    # Each worker measured its offset at start and said so.
    offsets = {row.worker: row.offset_seconds for row in clock.recent_offsets()}
    assert sorted(round(v / 60) for v in offsets.values() if abs(v) > 60) == [-5, 5]
    assert WorkerClock.objects.filter(measured_at__lte=Now()).count() >= 3
    for skewed in (behind, ahead):
        log = skewed.log.read_text(errors="replace")
        assert "clock is" in log and "the database's" in log
    assert "clock is" not in sweeper.log.read_text(errors="replace")


@pytest.mark.django_db
def test_a_worker_far_from_the_database_clock_logs_and_is_shown(admin_client, settings, caplog):
    import logging
    from unittest import mock

    from django.urls import reverse

    real = time.time
    # This process's clock, 5 minutes behind the database's (only the clock is mocked).
    with (
        mock.patch("deliveries.services.clock.time.time", lambda: real() - SKEW_SECONDS),
        caplog.at_level(logging.ERROR, logger="deliveries.clock"),
    ):
        offset = clock.check(force=True)
    assert SKEW_SECONDS - 5 < offset < SKEW_SECONDS + 5
    assert "300.0 s behind the database's" in caplog.text
    row = WorkerClock.objects.get(worker=clock.worker_name())
    assert row.offset_seconds == pytest.approx(offset)

    html = admin_client.get(reverse("admin:deliveries_dashboard")).content.decode()
    assert 'id="clock-skew"' in html and clock.worker_name() in html

    settings.WEBHOOKS = {**settings.WEBHOOKS, "METRICS_ENABLED": True, "METRICS_TOKEN": "t0ken"}
    body = admin_client.get("/api/metrics/", HTTP_AUTHORIZATION="Bearer t0ken").content.decode()
    line = f'webhooks_clock_offset_seconds{{worker="{clock.worker_name()}"}} '
    shown = float(body.split(line)[1].split()[0])
    assert SKEW_SECONDS - 5 < shown < SKEW_SECONDS + 5

    clock.check(force=True)  # synchronised again: nothing to show
    html = admin_client.get(reverse("admin:deliveries_dashboard")).content.decode()
    assert 'id="clock-skew"' not in html
