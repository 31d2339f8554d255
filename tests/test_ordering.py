"""Ordered delivery per key (deliveries/services/ordering.py), in-process: the real receiver on
loopback, the real Redis broker (to see which messages were sent), `attempt_delivery` called as
the task calls it. The chaos test with worker processes is tests/test_ordering_faults.py."""

from __future__ import annotations

import base64
import json

import pytest
from django.db.models.functions import Now
from django.utils import timezone

from deliveries.models import Delivery, DeliveryStatus, Event, WaitReason
from deliveries.services import ordering, publish, replay
from deliveries.services.attempts import attempt_delivery
from deliveries.services.bulk_retry import bulk_retry
from deliveries.services.logsearch import DeliverySearch
from deliveries.services.publishing import PublishError, fan_out
from deliveries.services.sweeping import sweep
from subscriptions.models import Subscription
from tests.factories import api_client, make_subscription, make_user
from tests.receiver import Reply

pytestmark = pytest.mark.django_db(transaction=True)


def sent(broker) -> list[list]:
    """The (delivery id, attempt) of every deliver message waiting in the broker, oldest first."""
    from webhooks_project.celery import app

    out = []
    with app.connection_for_write() as conn:
        client = conn.default_channel.client
        for queue in ("webhooks", "webhooks.retry"):
            for item in reversed(client.lrange(queue, 0, -1)):
                message = json.loads(item)
                out.append(json.loads(base64.b64decode(message["body"]))[0][:2])
    return out


def drain(broker) -> None:
    from webhooks_project.celery import app

    with app.connection_for_write() as conn:
        conn.default_channel.client.flushdb()


def of(event: Event, subscription=None) -> Delivery:
    rows = Delivery.objects.filter(event=event)
    if subscription is not None:
        rows = rows.filter(subscription=subscription)
    return rows.get()


def is_held(delivery: Delivery) -> bool:
    delivery.refresh_from_db()
    return (
        delivery.status in (DeliveryStatus.PENDING, DeliveryStatus.RETRYING)
        and delivery.next_attempt_at is None
        and delivery.waiting_for == WaitReason.ORDERING
    )


# --- Publish order --------------------------------------------------------------------------------


def test_each_tenants_key_numbers_its_events_from_one(broker):
    a1 = publish("order.created", {"n": 1}, ordering_key="order_1")
    a2 = publish("order.created", {"n": 2}, ordering_key="order_1")
    b1 = publish("order.created", {"n": 3}, ordering_key="order_2")
    other = publish("order.created", {"n": 4}, ordering_key="order_1", tenant="org_other")
    plain = publish("order.created", {"n": 5})
    assert [e.ordering_seq for e in (a1, a2, b1, other)] == [1, 2, 1, 1]
    assert plain.ordering_key is None and plain.ordering_seq is None


@pytest.mark.parametrize(
    ("key", "field_error"),
    [
        ("", ("blank", "non-empty")),
        ("x" * 256, ("255",)),
        (" padded", ("surrounding spaces",)),
        ("line\nbreak", ("control characters",)),
    ],
)
def test_a_malformed_ordering_key_is_refused_with_a_field_error(key, field_error):
    user = make_user("pub", "add_event")
    answer = api_client(user).post(
        "/api/events/", {"type": "order.created", "data": {}, "ordering_key": key}, format="json"
    )
    assert answer.status_code == 400
    assert field_error[0] in " ".join(answer.json()["ordering_key"])
    with pytest.raises(PublishError) as raised:
        publish("order.created", {}, ordering_key=key)
    assert raised.value.field == "ordering_key" and field_error[-1] in raised.value.message
    assert not Event.objects.exists()


def test_an_ordering_key_with_a_broadcast_is_refused():
    user = make_user("pub", "add_event")
    answer = api_client(user).post(
        "/api/events/",
        {"type": "order.created", "data": {}, "ordering_key": "k", "broadcast": True},
        format="json",
    )
    assert answer.status_code == 400 and "broadcast" in answer.json()["ordering_key"][0]


def test_the_api_publishes_with_a_key_and_shows_it(broker):
    make_subscription("http://127.0.0.1:9/a")
    client = api_client(make_user("pub", "add_event", "view_event", "view_delivery"))
    for n in (1, 2):
        answer = client.post(
            "/api/events/",
            {"type": "order.created", "data": {"n": n}, "ordering_key": "order_1001"},
            format="json",
        )
        assert answer.status_code == 202
    event = client.get(f"/api/events/{answer.json()['id']}/").json()
    assert (event["ordering_key"], event["ordering_seq"]) == ("order_1001", 2)
    assert event["deliveries"][0]["ordering_key"] == "order_1001"
    assert event["deliveries"][0]["waiting_for"] == "ordering"


# --- Fan-out and the claim ------------------------------------------------------------------------


def test_the_second_delivery_of_a_key_is_held_and_not_sent(broker):
    sub = make_subscription("http://127.0.0.1:9/a")
    first = of(publish("order.created", {"n": 1}, ordering_key="k"))
    second = of(publish("order.created", {"n": 2}, ordering_key="k"))
    unkeyed = of(publish("order.created", {"n": 3}))
    other_key = of(publish("order.created", {"n": 4}, ordering_key="j"))
    assert sent(broker) == [[first.pk, 1], [unkeyed.pk, 1], [other_key.pk, 1]]
    assert is_held(second) and not is_held(first)
    assert second.subscription_id == sub.pk
    # Even made due by hand, the claim refuses it while the first has not ended.
    Delivery.objects.filter(pk=second.pk).update(next_attempt_at=Now())
    assert attempt_delivery(second.pk, 1).action == "skip"
    second.refresh_from_db()
    assert second.status == DeliveryStatus.PENDING and second.attempts == 0


def test_a_head_that_succeeds_releases_the_next_at_once(broker, receiver):
    make_subscription(receiver.url("/ok"))
    events = [publish("order.created", {"n": n}, ordering_key="k") for n in range(3)]
    deliveries = [of(e) for e in events]
    drain(broker)
    assert attempt_delivery(deliveries[0].pk, 1).action == "done"
    # The next one's message was sent by the worker that ended the first, not by a sweep.
    assert sent(broker) == [[deliveries[1].pk, 1]]
    assert not is_held(deliveries[1]) and is_held(deliveries[2])
    assert attempt_delivery(deliveries[2].pk, 1).action == "skip"  # not its turn
    assert attempt_delivery(deliveries[1].pk, 1).action == "done"
    assert attempt_delivery(deliveries[2].pk, 1).action == "done"
    assert [json.loads(r.body)["data"]["n"] for r in receiver.received] == [0, 1, 2]


def test_a_failing_head_blocks_only_its_key_on_that_endpoint(broker, receiver):
    receiver.script("/fail", Reply(500))
    failing = make_subscription(receiver.url("/fail"))
    healthy = make_subscription(receiver.url("/ok"))
    k1 = publish("order.created", {"n": 1}, ordering_key="k")
    k2 = publish("order.created", {"n": 2}, ordering_key="k")
    j1 = publish("order.created", {"n": 3}, ordering_key="j")
    plain = publish("order.created", {"n": 4})
    assert attempt_delivery(of(k1, failing).pk, 1).action == "retry"
    assert is_held(of(k2, failing))  # behind the failing head
    # Other keys, unkeyed events and the same key on another endpoint flow.
    for event in (j1, plain):
        assert attempt_delivery(of(event, failing).pk, 1).action == "retry"  # sent (and failed)
    assert attempt_delivery(of(k1, healthy).pk, 1).action == "done"
    assert attempt_delivery(of(k2, healthy).pk, 1).action == "done"
    assert receiver.counts["/fail"] == 3 and receiver.counts["/ok"] == 2


def test_a_head_that_fails_for_good_releases_the_next(broker, receiver):
    receiver.script("/gone", Reply(400))
    make_subscription(receiver.url("/gone"))
    first = of(publish("order.created", {"n": 1}, ordering_key="k"))
    second = of(publish("order.created", {"n": 2}, ordering_key="k"))
    drain(broker)
    assert attempt_delivery(first.pk, 1).action == "done"
    first.refresh_from_db()
    assert first.status == DeliveryStatus.FAILED
    assert sent(broker) == [[second.pk, 1]] and not is_held(second)


def test_an_earlier_event_not_yet_fanned_out_goes_first(broker):
    sub = make_subscription("http://127.0.0.1:9/a")
    now = timezone.now()
    # Stored in order, neither fanned out yet (the first one's fan-out was lost with a worker).
    e1 = Event.objects.create(
        type="order.created", ordering_key="k", ordering_seq=1, created_at=now
    )
    e2 = Event.objects.create(
        type="order.created", ordering_key="k", ordering_seq=2, created_at=now
    )
    fan_out(e2.pk)
    e1.refresh_from_db()
    assert e1.fanned_out_at is not None
    assert not is_held(of(e1, sub)) and is_held(of(e2, sub))
    assert of(e1, sub).pk < of(e2, sub).pk
    assert sent(broker) == [[of(e1, sub).pk, 1]]


# --- Skip, retry, replay, the sweep ---------------------------------------------------------------


def test_skip_discards_the_head_for_good_and_releases_the_next(broker, receiver):
    receiver.script("/fail", Reply(500))
    make_subscription(receiver.url("/fail"))
    first = of(publish("order.created", {"n": 1}, ordering_key="k"))
    second = of(publish("order.created", {"n": 2}, ordering_key="k"))
    attempt_delivery(first.pk, 1)
    drain(broker)
    assert ordering.skip(first, "alice") == 1
    first.refresh_from_db()
    assert first.status == DeliveryStatus.DISCARDED
    assert "Skipped by alice" in first.last_error
    assert sent(broker) == [[second.pk, 1]]
    with pytest.raises(ordering.SkipError):
        ordering.skip(first, "alice")  # finished already
    with pytest.raises(ordering.SkipError):
        ordering.skip(of(publish("order.created", {})), "alice")  # no key


def test_a_manual_retry_behind_an_unfinished_head_waits_its_turn(broker, receiver):
    receiver.script("/fail", Reply(400))
    make_subscription(receiver.url("/fail"))
    first = of(publish("order.created", {"n": 1}, ordering_key="k"))
    second = of(publish("order.created", {"n": 2}, ordering_key="k"))
    attempt_delivery(first.pk, 1)  # failed for good: the second is released
    attempt_delivery(second.pk, 1)  # failed for good too
    # Retry the first, then the second: the second must wait for the first's new attempt.
    drain(broker)
    assert replay.redeliver_one(first) == 2
    assert replay.redeliver_one(second) == 2
    assert sent(broker) == [[first.pk, 2]]
    assert is_held(second)
    receiver.script("/fail", Reply(200))
    assert attempt_delivery(first.pk, 2).action == "done"
    assert sent(broker) == [[first.pk, 2], [second.pk, 2]]


def test_a_manual_retry_of_an_ended_head_holds_the_next_one_that_was_due(broker, receiver):
    # The first succeeded, which released the second (due, its message sent). A manual retry
    # of the first then makes the second wait again, and the first's new end releases it at
    # once: it does not wait for the sweep.
    make_subscription(receiver.url("/ok"))
    first = of(publish("order.created", {"n": 1}, ordering_key="k"))
    second = of(publish("order.created", {"n": 2}, ordering_key="k"))
    assert attempt_delivery(first.pk, 1).action == "done"
    drain(broker)
    assert not is_held(second)
    assert replay.redeliver_one(Delivery.objects.get(pk=first.pk)) == 2
    assert is_held(second)
    assert sent(broker) == [[first.pk, 2]]
    assert attempt_delivery(second.pk, 1).action == "skip"  # its old message: not its turn
    assert attempt_delivery(first.pk, 2).action == "done"
    assert sorted(sent(broker)) == sorted([[first.pk, 2], [second.pk, 1]])
    assert attempt_delivery(second.pk, 1).action == "done"
    assert [json.loads(r.body)["data"]["n"] for r in receiver.received] == [1, 1, 2]


def test_a_bulk_retry_keeps_the_publish_order(broker, receiver):
    receiver.script("/fail", Reply(400))
    make_subscription(receiver.url("/fail"))
    deliveries = [of(publish("order.created", {"n": n}, ordering_key="k")) for n in range(3)]
    for delivery in deliveries:
        attempt_delivery(delivery.pk, 1)
    drain(broker)
    result = bulk_retry(Delivery.objects.all(), DeliverySearch(statuses=("failed",)))
    assert result.queued == 3
    assert sent(broker) == [[deliveries[0].pk, 2]]
    assert is_held(deliveries[1]) and is_held(deliveries[2])


def test_a_replay_keeps_the_publish_order(broker, receiver):
    receiver.script("/fail", Reply(400))
    sub = make_subscription(receiver.url("/fail"))
    deliveries = [of(publish("order.created", {"n": n}, ordering_key="k")) for n in range(3)]
    for delivery in deliveries:
        attempt_delivery(delivery.pk, 1)
    drain(broker)
    since = timezone.now() - timezone.timedelta(hours=1)
    request = replay.build_request(sub, since)
    assert replay.run_replay(request) == 3
    assert sent(broker) == [[deliveries[0].pk, 2]]
    assert is_held(deliveries[1]) and is_held(deliveries[2])


def test_the_sweep_releases_what_a_dead_worker_left_held(broker):
    make_subscription("http://127.0.0.1:9/a")
    first = of(publish("order.created", {"n": 1}, ordering_key="k"))
    second = of(publish("order.created", {"n": 2}, ordering_key="k"))
    third = of(publish("order.created", {"n": 3}, ordering_key="k"))
    # The first ended, but its worker died before releasing the next.
    Delivery.objects.filter(pk=first.pk).update(status=DeliveryStatus.SUCCEEDED)
    # A stray message made the third due although it is not the head.
    Delivery.objects.filter(pk=third.pk).update(next_attempt_at=Now(), wait_reason="")
    drain(broker)
    report = sweep()
    assert report.released_keys == 1
    assert [pk for pk, _ in sent(broker)] == [second.pk]
    assert is_held(third)


def test_disabling_the_endpoint_discards_the_held_ones_too(broker):
    from deliveries.services import states

    sub = make_subscription("http://127.0.0.1:9/a")
    for n in range(3):
        publish("order.created", {"n": n}, ordering_key="k")
    assert states.disable(sub, "by test") == 3
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.DISCARDED}


def test_blocked_keys_name_the_head_and_how_many_wait(broker, receiver):
    receiver.script("/fail", Reply(500))
    sub = make_subscription(receiver.url("/fail"))
    head = of(publish("order.created", {"n": 1}, ordering_key="k"))
    for n in range(2):
        publish("order.created", {"n": n}, ordering_key="k")
    attempt_delivery(head.pk, 1)
    publish("order.created", {"n": 9}, ordering_key="free")
    [blocked] = ordering.blocked_keys(Delivery.objects.filter(subscription=sub))
    assert (blocked.key, blocked.held, blocked.head.pk) == ("k", 2, head.pk)
    assert blocked.head.last_status_code == 500
    from deliveries.services import health

    assert health.held_by_reason() == {WaitReason.ORDERING: 2}  # webhooks_backlog_held


def test_a_pruned_counter_starts_again_after_the_stored_events(broker):
    make_subscription("http://127.0.0.1:9/a")
    first = publish("order.created", {"n": 1}, ordering_key="k")
    second = publish("order.created", {"n": 2}, ordering_key="k")
    publish("order.created", {"n": 3}, ordering_key="gone")
    Event.objects.filter(ordering_key="gone").delete()  # pruned by retention
    assert ordering.prune_counters() == 1  # "gone" only: "k" still has events
    # Even were "k"'s counter lost, the next event comes after the stored ones.
    from deliveries.models import OrderingCounter

    OrderingCounter.objects.filter(key="k").delete()
    third = publish("order.created", {"n": 3}, ordering_key="k")
    assert (first.ordering_seq, second.ordering_seq, third.ordering_seq) == (1, 2, 3)
    assert is_held(of(third))


def test_a_skipped_delivery_of_a_disabled_endpoint_keeps_its_place_for_a_replay(broker):
    from subscriptions.services import disable_subscription, enable_subscription

    sub = make_subscription("http://127.0.0.1:9/a")
    disable_subscription(sub, "paused")
    events = [publish("order.created", {"n": n}, ordering_key="k") for n in range(2)]
    assert {of(e).status for e in events} == {DeliveryStatus.SKIPPED}
    enable_subscription(Subscription.objects.get(pk=sub.pk))
    drain(broker)
    since = timezone.now() - timezone.timedelta(hours=1)
    replay.run_replay(replay.build_request(Subscription.objects.get(pk=sub.pk), since))
    assert sent(broker) == [[of(events[0]).pk, 1]]
    assert is_held(of(events[1]))


def test_a_head_held_at_its_in_flight_cap_keeps_the_next_one_held(broker, receiver):
    from deliveries.services import inflight

    sub = make_subscription(receiver.url("/ok"), max_in_flight=1)
    first = of(publish("order.created", {"n": 1}, ordering_key="k"))
    second = of(publish("order.created", {"n": 2}, ordering_key="k"))
    slot = inflight.acquire(sub)  # another request to the endpoint is in flight
    assert slot is not None
    assert attempt_delivery(first.pk, 1).action == "defer"
    first.refresh_from_db()
    assert (first.status, first.attempts) == (DeliveryStatus.PENDING, 0)  # no attempt spent
    assert is_held(second)
    slot.release()
    drain(broker)
    assert attempt_delivery(first.pk, 1).action == "done"
    assert sent(broker) == [[second.pk, 1]]
    assert receiver.counts["/ok"] == 1
