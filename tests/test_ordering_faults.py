"""Ordered delivery under faults: two real worker processes, one killed with SIGKILL mid-run,
then the broker's Redis restarted without persistence (its own redis-server on a free port),
while a real receiver fails some requests and records the order of arrival.

What must hold, per (endpoint, ordering key): the events arrive in publish order; an event
arrives only once every earlier one was accepted (a 2xx); nothing is lost; a repeat is only the
at-least-once kind (the same webhook-id again after its worker died), never an earlier event
after a later one.
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict

import pytest

from deliveries.models import Delivery, DeliveryStatus
from deliveries.services import publish
from tests.factories import make_subscription
from tests.fault_helpers import fault_line, sweep_until
from tests.receiver import Reply
from tests.test_faults_broker import own_redis  # noqa: F401 (a fixture: its own redis-server)

pytestmark = [pytest.mark.faults, pytest.mark.integration]

KEYS = [f"order_{n}" for n in range(8)]
PER_KEY = 12


def script() -> list[Reply]:
    """Every fifth request refused with a 500; some answers slow enough to be killed mid-POST."""
    replies = []
    for i in range(1500):
        if i % 5 == 3:
            replies.append(Reply(500))
        else:
            replies.append(Reply(200, delay=0.3 if i % 7 == 0 else 0.02))
    return [*replies, Reply(200)]


def check_order(arrivals: list[tuple[str, int, int]]) -> tuple[int, int]:
    """`arrivals`: (key, n, status) in the order one endpoint received them. Returns the number
    of out-of-order arrivals (an event before an earlier one of its key was accepted, or an
    earlier one after a later one) and of 2xx repeats of one event (at-least-once)."""
    accepted: dict[str, set[int]] = defaultdict(set)
    highest: dict[str, int] = defaultdict(lambda: -1)
    out_of_order = repeats = 0
    for key, n, status in arrivals:
        if n < highest[key]:
            out_of_order += 1  # an earlier event after a later one
        elif any(m not in accepted[key] for m in range(n)):
            out_of_order += 1  # sent before every earlier one was accepted
        highest[key] = max(highest[key], n)
        if 200 <= status < 300:
            repeats += n in accepted[key]
            accepted[key].add(n)
    return out_of_order, repeats


def test_order_per_key_holds_through_a_kill_and_a_broker_restart(
    start_worker,
    receiver,
    faulty,
    own_redis,  # noqa: F811
):
    overrides = faulty(RETRY_SCHEDULE=[0, 0.2, 0.5, 1, 1, 1, 1, 1, 1, 1, 1, 1])
    paths = ["/a", "/b"]
    scripts = {}
    for path in paths:
        scripts[path] = script()
        receiver.script(path, *scripts[path])
        make_subscription(receiver.url(path))
    workers = [
        start_worker(broker_url=own_redis.url, concurrency=4, overrides=overrides) for i in range(2)
    ]
    events = []
    for n in range(PER_KEY):  # keys interleaved, as an order system would publish them
        for key in KEYS:
            events.append(publish("order.created", {"key": key, "n": n}, ordering_key=key))
        events.append(publish("order.created", {"key": None, "n": n}))  # unkeyed among them

    assert receiver.wait_for(40, timeout=180), (dict(receiver.counts), workers[1].output(3000))
    workers[0].kill()  # SIGKILL, mid-run: its claims are left for the sweep
    killed_at = time.monotonic()
    assert receiver.wait_for(110, timeout=180)
    own_redis.restart()  # no persistence: every queued and unacknowledged message is gone

    crashes: list[str] = []

    def supervised_and_done() -> bool:
        # As systemd's Restart=always would: kombu may end a worker's consumer when Redis goes
        # away under it (tests/test_faults_broker.py); its supervisor starts it again.
        live = workers[-1]
        if live.proc.poll() is not None:
            crashes.append(live.output())
            workers.append(
                start_worker(broker_url=own_redis.url, concurrency=4, overrides=overrides)
            )
        done = Delivery.objects.filter(event__in=events, status=DeliveryStatus.SUCCEEDED)
        return done.count() == 2 * len(events)

    assert sweep_until(supervised_and_done, timeout=240), Counter(
        Delivery.objects.filter(event__in=events).values_list("status", flat=True)
    )
    recover = time.monotonic() - killed_at

    out_of_order = repeats = lost = posts = 0
    for path in paths:
        received = receiver.requests_to(path)
        statuses = [
            scripts[path][min(i, len(scripts[path]) - 1)].status for i in range(len(received))
        ]
        bodies = [json.loads(r.body)["data"] for r in received]
        keyed = [(b["key"], b["n"], s) for b, s in zip(bodies, statuses, strict=True) if b["key"]]
        bad, again = check_order(keyed)
        out_of_order += bad
        repeats += again
        accepted = {(b["key"], b["n"]) for b, s in zip(bodies, statuses, strict=True) if s == 200}
        lost += sum(1 for e in events if (e.data["key"], e.data["n"]) not in accepted)
        posts += len(received)
    fault_line(
        f"ordering: kill + redis ({len(crashes)} exit)",
        sent=2 * len(events),
        delivered=2 * len(events) - lost,
        lost=lost,
        dup=repeats,
        recover=recover,
    )
    assert out_of_order == 0
    assert lost == 0
    # At-least-once: a 200 whose worker died before recording it is sent again; at most the
    # requests in flight when the worker was killed or Redis went (4 slots per worker).
    assert repeats <= 8
    # The faults did happen: the receiver refused requests and the order still held.
    assert posts > 2 * len(events)


def test_check_order_catches_what_it_must():
    # The checker itself: it must not pass everything.
    assert check_order([("k", 0, 200), ("k", 1, 200)]) == (0, 0)
    assert check_order([("k", 1, 200), ("k", 0, 200)])[0] == 2
    assert check_order([("k", 0, 500), ("k", 1, 200)])[0] == 1  # 0 not accepted yet
    assert check_order([("k", 0, 200), ("k", 0, 200), ("k", 1, 200)]) == (0, 1)
