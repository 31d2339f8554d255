"""Both brokers hold the caps: on Redis and on RabbitMQ (a vhost of its own on 127.0.0.1:5672),
the in-flight counters live in WEBHOOKS["REDIS_URL"], so an endpoint capped at 2 never gets a
third POST at once, and another tenant's event goes out while that endpoint is saturated.

The events are published by another process on the broker under test, as a host's web process
would; the deliveries are made by a real worker on that broker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from deliveries.models import Delivery, DeliveryStatus
from deliveries.services import inflight
from tests.factories import make_subscription
from tests.procs import ROOT, RabbitVhost, database_url_for_tests, rabbitmq_reachable
from tests.receiver import Reply

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SLOW_DELIVERIES = 10


@pytest.fixture(scope="module")
def rabbit_vhost():
    if not rabbitmq_reachable():
        pytest.skip("no RabbitMQ on 127.0.0.1:5672 with rabbitmqctl (.ci/run starts one)")
    vhost = RabbitVhost().create()
    yield vhost
    vhost.delete()


@pytest.fixture(params=["redis", "rabbitmq"])
def broker_under_test(request, broker):
    """(broker URL, WEBHOOKS overrides) for each broker. On RabbitMQ the counters need a Redis
    of their own: REDIS_URL names a database of the session's Redis."""
    if request.param == "redis":
        return broker.url, {}
    vhost = request.getfixturevalue("rabbit_vhost")
    return vhost.url, {"REDIS_URL": f"redis://127.0.0.1:{broker.port}/3"}


def publish_elsewhere(broker_url: str, overrides: dict, script: str) -> None:
    """Run `script` in a Django process of its own whose Celery app uses `broker_url`."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "CELERY_BROKER_URL": broker_url,
        "DATABASE_URL": database_url_for_tests(),
        "WEBHOOKS_OVERRIDES": json.dumps(overrides),
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr


def test_a_capped_endpoint_gets_at_most_its_cap_and_other_tenants_go_on(
    broker_under_test, start_worker, receiver, settings
):
    broker_url, counters = broker_under_test
    overrides = {
        **counters,
        "TIMEOUT": 8,
        "IN_FLIGHT_RETRY_DELAY": 0.25,
        "RETRY_SCHEDULE": [0, 0.2, 0.2],
    }
    settings.WEBHOOKS = {**settings.WEBHOOKS, **overrides}  # this process reads the counters
    receiver.script("/slow", Reply(200, delay=1.5))
    slow = make_subscription(receiver.url("/slow"), tenant="org_a", max_in_flight=2)
    make_subscription(receiver.url("/fast"), tenant="org_b")
    worker = start_worker(pool="threads", concurrency=4, broker_url=broker_url, overrides=overrides)

    publish_elsewhere(
        broker_url,
        overrides,
        "from deliveries.services import publish\n"
        f"for n in range({SLOW_DELIVERIES}):\n"
        "    publish('order.created', {'n': n}, tenant='org_a')\n"
        "publish('order.created', {'n': 'b'}, tenant='org_b')\n",
    )

    everything = Delivery.objects.all()
    counted: list[int] = []
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        counted.append(inflight.in_flight(slow.pk))
        if everything.filter(status=DeliveryStatus.SUCCEEDED).count() == SLOW_DELIVERIES + 1:
            break
        time.sleep(0.1)
    assert everything.filter(status=DeliveryStatus.SUCCEEDED).count() == SLOW_DELIVERIES + 1, (
        worker.output()
    )

    # At most 2 POSTs at once to the capped endpoint, and the cap was reached (it did bind).
    assert receiver.peak["/slow"] == 2
    assert receiver.counts["/slow"] == SLOW_DELIVERIES  # nothing sent twice
    # The counters are where the API reads them: not 0 while POSTs were in flight.
    assert 1 <= max(counted) <= 2
    # Tenant B did not queue behind A's backlog: its POST came before most of A's.
    order = [r.path for r in receiver.received]
    slow_before_b = order[: order.index("/fast")].count("/slow")
    assert slow_before_b <= 4, order
