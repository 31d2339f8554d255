"""OpenTelemetry: spans for publish, fan-out and each attempt, one trace from the producer to
every attempt (through Celery's messages, retries included), the optional `traceparent` to
receivers, and a pipeline that works unchanged without the package."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import timedelta

import pytest
from django.utils import timezone
from standardwebhooks import Webhook

pytest.importorskip("opentelemetry.sdk")

from opentelemetry import baggage, trace
from opentelemetry import context as otel_context

from deliveries import tracing
from deliveries.models import Delivery, DeliveryAttempt, DeliveryStatus, Event
from deliveries.services import attempt_delivery, publish, sweep
from tests.factories import make_subscription
from tests.procs import ROOT, wait_until
from tests.receiver import Reply
from tests.tracing_sdk import as_dict, read_file_spans, recording


@pytest.fixture
def spans():
    """The spans this process records during the test; `spans()` reads them."""
    with recording() as exporter:
        yield lambda: [as_dict(span) for span in exporter.get_finished_spans()]


def named(spans, name):
    return [span for span in spans if span["name"] == name]


def one(spans, name):
    found = named(spans, name)
    assert len(found) == 1, f"{len(found)} {name} spans: {spans}"
    return found[0]


def traceparent_of(span):
    """The version, trace id and parent id fields of the `traceparent` naming `span`."""
    return f"00-{span['trace_id']:032x}-{span['span_id']:016x}"


def names(traceparent):
    """A `traceparent` without its flags (sampled, and W3C level 2's random trace id)."""
    version, trace_id, parent_id, flags = traceparent.split("-")
    assert int(flags, 16) & 1  # sampled
    return f"{version}-{trace_id}-{parent_id}"


@pytest.fixture
def eager():
    """Tasks run in this process as they are sent (`task_always_eager`, as in a host's tests)."""
    import deliveries.tasks  # noqa: F401 - registers the tasks, as a worker's autodiscovery does
    from webhooks_project.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


# --- In one process -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_publish_then_fan_out_after_commit_is_one_trace(spans, django_capture_on_commit_callbacks):
    sub = make_subscription("http://127.0.0.1:9/hook", ["order.*"], tenant="org_1")

    # The fan-out runs at the commit, after the publish span ended: it still joins its trace.
    with django_capture_on_commit_callbacks(execute=True):
        event = publish("order.created", {"id": 1}, tenant="org_1")
        assert named(spans(), "webhooks.fan_out") == []

    publish_span = one(spans(), "webhooks.publish")
    fan_out = one(spans(), "webhooks.fan_out")
    assert fan_out["trace_id"] == publish_span["trace_id"]
    assert fan_out["parent_id"] == publish_span["span_id"]
    assert publish_span["attributes"] == {
        "webhooks.event_type": "order.created",
        "webhooks.tenant": "org_1",
        "webhooks.event_id": str(event.pk),
        "webhooks.created": True,
    }
    assert fan_out["attributes"] == {
        "webhooks.event_id": str(event.pk),
        "webhooks.tenant": "org_1",
        "webhooks.event_type": "order.created",
        "webhooks.deliveries": 1,
    }
    assert Delivery.objects.get(event=event).subscription_id == sub.pk


@pytest.mark.django_db
def test_publish_inside_the_producers_trace_is_its_child(spans, django_capture_on_commit_callbacks):
    make_subscription("http://127.0.0.1:9/hook")
    tracer = trace.get_tracer("host")

    with (
        tracer.start_as_current_span("host.request") as host,
        django_capture_on_commit_callbacks(execute=True),
    ):
        publish("order.created", {})

    publish_span = one(spans(), "webhooks.publish")
    assert publish_span["trace_id"] == host.get_span_context().trace_id
    assert publish_span["parent_id"] == host.get_span_context().span_id
    assert one(spans(), "webhooks.fan_out")["trace_id"] == host.get_span_context().trace_id


@pytest.mark.django_db
def test_an_idempotent_repeat_is_traced_as_not_created(spans):
    first = publish("order.created", {"n": 1}, idempotency_key="k1")
    spans_before = len(spans())

    again = publish("order.created", {"n": 1}, idempotency_key="k1")

    assert again.pk == first.pk
    repeat = spans()[spans_before:]
    assert [span["name"] for span in repeat] == ["webhooks.publish"]
    assert repeat[0]["attributes"]["webhooks.created"] is False


@pytest.mark.django_db(transaction=True)
def test_messages_carry_the_fan_outs_context(spans, broker):
    """The first attempts' messages are enqueued with the fan-out's context in their headers."""
    make_subscription("http://127.0.0.1:9/a")
    make_subscription("http://127.0.0.1:9/b")

    publish("order.created", {})

    fan_out = one(spans(), "webhooks.fan_out")
    client = broker_client(broker)
    messages = [json.loads(raw) for raw in client.lrange("webhooks", 0, -1)]
    assert len(messages) == 2
    assert {names(m["headers"]["traceparent"]) for m in messages} == {traceparent_of(fan_out)}


def broker_client(broker):
    import redis

    return redis.Redis.from_url(broker.url)


@pytest.mark.django_db(transaction=True)
def test_attempt_span_has_semantic_attributes(spans, receiver, broker):
    receiver.script("/ok", Reply(200))
    sub = make_subscription(receiver.url("/ok"), tenant="org_7")
    event = publish("order.created", {}, tenant="org_7")
    delivery = Delivery.objects.get(event=event)

    attempt_delivery(delivery.pk, 1)

    span = one(spans(), "webhooks.attempt")
    attributes = span["attributes"]
    duration = attributes.pop("webhooks.duration_ms")
    assert attributes == {
        "http.request.method": "POST",
        "server.address": "127.0.0.1",
        "server.port": receiver.server.server_address[1],
        "http.response.status_code": 200,
        "webhooks.tenant": "org_7",
        "webhooks.event_type": "order.created",
        "webhooks.event_id": str(event.pk),
        "webhooks.subscription_id": str(sub.pk),
        "webhooks.delivery_id": delivery.pk,
        "webhooks.attempt": 1,
        "webhooks.status": "succeeded",
        "webhooks.outcome": "done",
    }
    assert duration == DeliveryAttempt.objects.get(delivery=delivery).duration_ms
    assert span["status"] == "UNSET"


@pytest.mark.django_db(transaction=True)
def test_failed_attempts_have_error_status(spans, receiver, broker, webhooks):
    webhooks(RETRY_SCHEDULE=[0, 0.2])
    receiver.script("/down", Reply(503))
    make_subscription(receiver.url("/down"))
    delivery = Delivery.objects.get(event=publish("order.created", {}))

    attempt_delivery(delivery.pk, 1)
    attempt_delivery(delivery.pk, 2)

    first, last = named(spans(), "webhooks.attempt")
    assert first["status"] == last["status"] == "ERROR"
    assert first["attributes"]["http.response.status_code"] == 503
    assert first["attributes"]["error.type"] == "http_status"
    assert (first["attributes"]["webhooks.status"], first["attributes"]["webhooks.outcome"]) == (
        "retrying",
        "retry",
    )
    assert last["attributes"]["webhooks.attempt"] == 2
    assert last["attributes"]["webhooks.status"] == "failed"
    assert Delivery.objects.get(pk=delivery.pk).status == DeliveryStatus.FAILED


@pytest.mark.django_db(transaction=True)
def test_a_refused_connection_is_an_error_span_without_status_code(spans, broker):
    from tests.procs import free_port

    make_subscription(f"http://127.0.0.1:{free_port()}/nobody")
    delivery = Delivery.objects.get(event=publish("order.created", {}))

    attempt_delivery(delivery.pk, 1)

    span = one(spans(), "webhooks.attempt")
    assert span["status"] == "ERROR"
    assert "http.response.status_code" not in span["attributes"]
    assert span["attributes"]["error.type"] == span["attributes"]["webhooks.error_kind"]
    assert span["attributes"]["error.type"] == "connection"


@pytest.mark.django_db(transaction=True)
def test_eager_tasks_nest_attempts_under_the_fan_out(spans, receiver, eager):
    receiver.script("/e", Reply(200))
    make_subscription(receiver.url("/e"))

    publish("order.created", {})

    assert receiver.wait_for(1)
    publish_span = one(spans(), "webhooks.publish")
    fan_out = one(spans(), "webhooks.fan_out")
    attempt = one(spans(), "webhooks.attempt")
    assert {publish_span["trace_id"], fan_out["trace_id"]} == {attempt["trace_id"]}
    assert attempt["parent_id"] == fan_out["span_id"]


@pytest.mark.django_db(transaction=True)
def test_a_parked_retry_sent_by_the_sweep_joins_the_publish_trace(
    spans, receiver, broker, webhooks
):
    """A wait longer than MAX_COUNTDOWN is parked in the row; the sweep's message carries no
    trace, so the attempt takes the one kept on the event."""
    # One FIFO: the attempt below runs without its message (whose end would free the
    # tenant's place in its fair share), and the lost message is found again by the sweep at
    # once rather than after its place's lease (services.fairness).
    webhooks(
        RETRY_SCHEDULE=[0, 1],
        RETRY_JITTER=0,
        MAX_COUNTDOWN=0.5,
        SWEEP_GRACE=0,
        TENANT_MAX_QUEUED=None,
    )
    receiver.script("/later", Reply(503), Reply(200))
    make_subscription(receiver.url("/later"))
    event = publish("order.created", {})
    delivery = Delivery.objects.get(event=event)
    publish_span = one(spans(), "webhooks.publish")
    assert event.traceparent.startswith(traceparent_of(publish_span))

    assert attempt_delivery(delivery.pk, 1).action == "park"
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())  # due now
    broker_client(broker).delete("webhooks", "webhooks.retry")
    assert sweep().enqueued == 1
    message = json.loads(broker_client(broker).lrange("webhooks.retry", 0, -1)[0])
    assert "traceparent" not in message["headers"]  # the sweep runs in no trace
    attempt_delivery(delivery.pk, 2)  # as the worker runs it: no context from the message

    first, second = named(spans(), "webhooks.attempt")
    assert second["attributes"]["webhooks.status"] == "succeeded"
    assert second["trace_id"] == publish_span["trace_id"]
    assert second["parent_id"] == publish_span["span_id"]
    assert first["parent_id"] == publish_span["span_id"]  # run here outside any trace too


@pytest.mark.django_db
def test_a_fan_out_made_up_by_the_sweep_joins_the_publish_trace(spans, broker, webhooks):
    """The process that published died before its on-commit hook: the sweep fans the event out
    within the publish's trace, kept on the event."""
    webhooks(SWEEP_GRACE=0)
    make_subscription("http://127.0.0.1:9/hook")
    event = publish("order.created", {})  # in the test's transaction: the hook never runs
    Event.objects.filter(pk=event.pk).update(created_at=timezone.now() - timedelta(minutes=1))

    assert sweep().fanned_out == 1

    publish_span = one(spans(), "webhooks.publish")
    fan_out = one(spans(), "webhooks.fan_out")
    assert fan_out["trace_id"] == publish_span["trace_id"]
    assert fan_out["parent_id"] == publish_span["span_id"]


@pytest.mark.django_db(transaction=True)
def test_the_next_ordered_delivery_joins_its_own_events_trace(spans, receiver, broker):
    """Ending a keyed delivery releases the next event's: that message carries no trace (not
    the first event's), and its attempt joins its own publish."""
    receiver.script("/ordered", Reply(200))
    make_subscription(receiver.url("/ordered"))
    first = publish("order.created", {"n": 1}, ordering_key="order_1")
    second = publish("order.created", {"n": 2}, ordering_key="order_1")
    first_publish, second_publish = named(spans(), "webhooks.publish")
    broker_client(broker).delete("webhooks", "webhooks.retry")

    with tracing.resumed(first.traceparent):  # as a worker runs the first event's message
        attempt_delivery(Delivery.objects.get(event=first).pk, 1)
    queued = [
        json.loads(raw)
        for queue in ("webhooks", "webhooks.retry")
        for raw in broker_client(broker).lrange(queue, 0, -1)
    ]
    next_delivery = Delivery.objects.get(event=second)
    assert [m["headers"].get("traceparent") for m in queued] == [None]
    attempt_delivery(next_delivery.pk, 1)

    one_attempt, two_attempt = named(spans(), "webhooks.attempt")
    assert one_attempt["trace_id"] == first_publish["trace_id"]
    assert two_attempt["trace_id"] == second_publish["trace_id"]
    assert two_attempt["parent_id"] == second_publish["span_id"]


# --- traceparent to receivers ---------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_no_traceparent_to_receivers_by_default(spans, receiver, broker):
    receiver.script("/r", Reply(200))
    make_subscription(receiver.url("/r"))
    delivery = Delivery.objects.get(event=publish("order.created", {}))

    attempt_delivery(delivery.pk, 1)

    assert one(spans(), "webhooks.attempt")  # traced all the same
    headers = {name.lower() for name in receiver.requests_to("/r")[0].headers}
    assert "traceparent" not in headers


@pytest.mark.django_db(transaction=True)
def test_traceparent_names_the_attempt_and_nothing_else_leaks(spans, receiver, broker, webhooks):
    webhooks(TRACEPARENT_HEADER=True)
    receiver.script("/r", Reply(200))
    sub = make_subscription(receiver.url("/r"))
    # The host's baggage travels within its own systems (Celery), never to a receiver.
    token = otel_context.attach(baggage.set_baggage("customer.secret", "s3cr3t"))
    try:
        delivery = Delivery.objects.get(event=publish("order.created", {"n": 1}))
        attempt_delivery(delivery.pk, 1)
    finally:
        otel_context.detach(token)

    attempt = one(spans(), "webhooks.attempt")
    request = receiver.requests_to("/r")[0]
    sent = {name.lower(): value for name, value in request.headers.items()}
    assert names(sent["traceparent"]) == traceparent_of(attempt)
    assert "tracestate" not in sent
    assert "baggage" not in sent
    assert "s3cr3t" not in json.dumps(sent)
    # Not signed: the signature verifies on the Standard Webhooks content alone.
    without = {k: v for k, v in request.headers.items() if k.lower() != "traceparent"}
    Webhook(sub.secret).verify(request.body, without)
    # Shown on the attempt row (it is no secret): the delivery log leads to the trace.
    stored = DeliveryAttempt.objects.get(delivery=delivery).request_headers
    assert stored["traceparent"] == sent["traceparent"]


def test_no_traceparent_is_made_up_for_an_unsampled_attempt(webhooks):
    """OpenTelemetry installed but not sampling (or no SDK): the span is invalid, nothing sent."""
    from opentelemetry.trace import INVALID_SPAN_CONTEXT, NonRecordingSpan

    webhooks(TRACEPARENT_HEADER=True)
    headers: dict[str, str] = {}

    tracing.add_traceparent(headers, NonRecordingSpan(INVALID_SPAN_CONTEXT))

    assert headers == {}


# --- Without OpenTelemetry ----------------------------------------------------------------------

WITHOUT_OTEL = textwrap.dedent(
    """
    import importlib.abc, json, os, sys

    class NoOpenTelemetry(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "opentelemetry" or name.startswith("opentelemetry."):
                raise ImportError(f"No module named {name!r} (hidden by the test)")
            return None

    sys.meta_path.insert(0, NoOpenTelemetry())

    import django
    django.setup()
    from django.core.management import call_command
    from webhooks_project.celery import app
    from deliveries import dispatch, tasks, tracing
    from deliveries.models import Delivery
    from deliveries.services import publish, publishing
    from subscriptions.models import Subscription

    call_command("migrate", verbosity=0)
    app.conf.task_always_eager = True
    Subscription.objects.create(url=os.environ["RECEIVER_URL"], event_types=["*"])
    event = publish("order.created", {"n": 1})
    print(json.dumps({
        "enabled": tracing.ENABLED,
        "loaded": sorted(m for m in sys.modules if m.startswith("opentelemetry")),
        "wrapped": [hasattr(f, "__wrapped__") for f in (
            publishing.publish_event, publishing.fan_out_counts,
            tasks.deliver.run, tasks.fan_out.run,
        )],
        "headers": dispatch.tracing.message_headers(),
        "statuses": list(Delivery.objects.filter(event=event).values_list("status", flat=True)),
        "traceparent": event.traceparent,
    }))
    """
)


def test_without_opentelemetry_everything_works_untouched(receiver, broker, tmp_path):
    receiver.script("/plain", Reply(200))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'plain.sqlite3'}",
        "CELERY_BROKER_URL": broker.url,
        "RECEIVER_URL": receiver.url("/plain"),
        "WEBHOOKS_OVERRIDES": json.dumps({"TRACEPARENT_HEADER": True}),
    }

    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_OTEL],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {
        "enabled": False,
        "loaded": [],
        # The hooks are the undecorated functions: nothing runs per delivery but a constant check.
        "wrapped": [False, False, False, False],
        "headers": None,
        "statuses": ["succeeded"],
        "traceparent": "",
    }
    request = receiver.requests_to("/plain")[0]
    assert "traceparent" not in {name.lower() for name in request.headers}


# --- Through a real Celery worker ---------------------------------------------------------------


@pytest.fixture
def traced_worker(start_worker, tmp_path):
    """A worker process that traces, exports its spans to a file and sends `traceparent` to
    receivers; the fixture's value reads the spans."""
    path = tmp_path / "worker-spans.jsonl"
    start_worker(
        settings_module="tests.settings_otel",
        extra_env={"OTEL_TEST_SPANS": str(path)},
        overrides={"TRACEPARENT_HEADER": True},
    )
    return lambda: read_file_spans(path)


@pytest.mark.integration
def test_one_trace_from_publish_through_celery_to_every_attempt_and_retry(
    spans, traced_worker, receiver, webhooks
):
    # A fan-out of more than FAN_OUT_INLINE_MAX goes to the worker as a task of its own.
    webhooks(FAN_OUT_INLINE_MAX=0)
    receiver.script("/flaky", Reply(500), Reply(200))
    receiver.script("/fine", Reply(200))
    make_subscription(receiver.url("/flaky"))
    make_subscription(receiver.url("/fine"))
    tracer = trace.get_tracer("host")

    with tracer.start_as_current_span("host.request") as host:
        event = publish("order.created", {"n": 1})
    trace_id = host.get_span_context().trace_id

    assert wait_until(
        lambda: Delivery.objects.filter(event=event, status=DeliveryStatus.SUCCEEDED).count() == 2,
        timeout=30,
    )
    assert wait_until(lambda: len(named(traced_worker(), "webhooks.attempt")) == 3, timeout=10)
    publish_span = one(spans(), "webhooks.publish")
    assert named(spans(), "webhooks.fan_out") == []  # it ran in the worker
    worker_spans = traced_worker()
    fan_out = one(worker_spans, "webhooks.fan_out")
    attempts = named(worker_spans, "webhooks.attempt")
    assert publish_span["trace_id"] == fan_out["trace_id"] == trace_id
    assert fan_out["parent_id"] == publish_span["span_id"]
    assert {span["trace_id"] for span in attempts} == {trace_id}
    # The retry on a Celery countdown keeps its message's headers: the fan-out is its parent too.
    assert {span["parent_id"] for span in attempts} == {fan_out["span_id"]}
    flaky = sorted(
        (
            span["attributes"]["webhooks.attempt"],
            span["status"],
            span["attributes"]["webhooks.status"],
        )
        for span in attempts
        if span["attributes"]["webhooks.subscription_id"]
        == str(Delivery.objects.get(event=event, attempts=2).subscription_id)
    )
    assert flaky == [(1, "ERROR", "retrying"), (2, "UNSET", "succeeded")]
    # The receiver's traceparent names the attempt that sent it.
    sent = sorted(names(r.headers["traceparent"]) for r in receiver.received)
    assert sent == sorted(traceparent_of(span) for span in attempts)


@pytest.mark.integration
def test_inline_fan_out_hands_its_context_to_the_worker(spans, traced_worker, receiver):
    receiver.script("/one", Reply(200))
    make_subscription(receiver.url("/one"))

    event = publish("order.created", {})

    assert wait_until(
        lambda: Delivery.objects.filter(event=event, status=DeliveryStatus.SUCCEEDED).exists(),
        timeout=30,
    )
    assert wait_until(lambda: len(named(traced_worker(), "webhooks.attempt")) == 1, timeout=10)
    fan_out = one(spans(), "webhooks.fan_out")  # inline, in this process
    attempt = one(traced_worker(), "webhooks.attempt")
    assert attempt["trace_id"] == fan_out["trace_id"]
    assert attempt["parent_id"] == fan_out["span_id"]
