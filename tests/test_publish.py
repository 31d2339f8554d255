"""Publishing and fan-out, in-process (no worker): rows, idempotency, transactions."""

import pytest
from django.db import transaction

from deliveries.models import Delivery, DeliveryStatus, Event
from deliveries.services import (
    PayloadTooLarge,
    PublishError,
    SchemaValidationError,
    publish,
    publish_event,
)
from subscriptions.matching import patterns_matching
from subscriptions.models import EventType, Subscription
from tests.factories import make_subscription

pytestmark = pytest.mark.django_db


def test_patterns_cover_exact_prefix_and_star():
    assert patterns_matching("order.item.created") == {
        "*",
        "order.*",
        "order.item.*",
        "order.item.created",
    }
    assert "order.*" in patterns_matching("order.created")
    assert "order.*" not in patterns_matching("orders.created")
    assert "order.created" not in patterns_matching("order.updated")


def test_the_database_counts_what_the_python_scan_matches():
    # The publishing request counts in SQL (jsonb ?| on PostgreSQL, json_each on SQLite); the
    # fan-out scans in Python. Both must agree on every kind of filter.
    filters = [
        ["*"],
        ["order.*"],
        ["order.item.*"],
        ["order.item.created"],
        ["order.created", "invoice.paid"],
        ["orders.*"],
        ["order"],
        ["invoice.*"],
        [],
    ]
    for i, event_types in enumerate(filters):
        make_subscription(f"http://127.0.0.1:9/{i}", event_types, is_active=i % 3 != 0)
    for event_type in ("order.item.created", "order.created", "invoice.paid", "order", "x.y"):
        active, inactive = Subscription.objects.matching_ids(event_type)
        counted = Subscription.objects.count_matching(event_type)
        assert counted == (len(active), len(active) + len(inactive)), event_type
        matched = set(Subscription.objects.matching(event_type).values_list("pk", flat=True))
        assert matched == set(active) | set(inactive), event_type
    # "*", "order.*", "order.item.*", the exact name, and [] which the factory makes "*".
    assert Subscription.objects.count_matching("order.item.created")[1] == 5


def test_publish_fans_out_to_matching_active_subscriptions(django_capture_on_commit_callbacks):
    star = make_subscription("http://127.0.0.1:9/a", ["*"])
    prefix = make_subscription("http://127.0.0.1:9/b", ["order.*"])
    make_subscription("http://127.0.0.1:9/c", ["invoice.paid"])
    disabled = make_subscription("http://127.0.0.1:9/d", ["*"], is_active=False)

    with django_capture_on_commit_callbacks(execute=True):
        publication = publish_event("order.created", {"id": 7})
    event = publication.event

    deliveries = {d.subscription_id: d for d in Delivery.objects.filter(event=event)}
    assert set(deliveries) == {star.pk, prefix.pk, disabled.pk}
    assert deliveries[star.pk].status == DeliveryStatus.PENDING
    assert deliveries[star.pk].next_attempt_at is not None
    assert deliveries[disabled.pk].status == DeliveryStatus.SKIPPED
    assert (publication.deliveries, publication.skipped) == (2, 1)
    # publish() returns the event: it carries the same figures (documented in publish()).
    assert (event.delivery_count, event.skipped_count) == (2, 1)
    event.refresh_from_db()
    assert event.fanned_out_at is not None


def test_same_idempotency_key_returns_first_event(django_capture_on_commit_callbacks):
    make_subscription("http://127.0.0.1:9/a")
    with django_capture_on_commit_callbacks(execute=True):
        first = publish("order.created", {"n": 1}, idempotency_key="k-1")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        again = publish_event("order.created", {"n": 1}, idempotency_key="k-1")
    assert again.event.pk == first.pk and again.created is False
    assert (again.deliveries, again.skipped) == (1, 0)  # the first event's figures
    assert callbacks == []
    assert Event.objects.count() == 1
    assert Delivery.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_rolled_back_publish_leaves_nothing():
    make_subscription("http://127.0.0.1:9/a")
    with pytest.raises(RuntimeError), transaction.atomic():
        publish("order.created", {"id": 1})
        raise RuntimeError("the caller's transaction fails")
    assert Event.objects.count() == 0
    assert Delivery.objects.count() == 0


def test_fan_out_waits_for_the_callers_commit(django_capture_on_commit_callbacks):
    make_subscription("http://127.0.0.1:9/a")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        publish("order.created", {})
    assert len(callbacks) == 1
    assert Delivery.objects.count() == 0


@pytest.mark.parametrize(
    ("event_type", "data", "field"),
    [("", {}, "type"), ("bad type", {}, "type"), ("order.created", [1], "data")],
)
def test_invalid_events_are_refused(event_type, data, field):
    with pytest.raises(PublishError) as info:
        publish(event_type, data)
    assert info.value.field == field
    assert Event.objects.count() == 0


def test_oversized_data_is_refused(settings):
    settings.WEBHOOKS = {**settings.WEBHOOKS, "MAX_PAYLOAD_BYTES": 100}
    with pytest.raises(PayloadTooLarge):
        publish("order.created", {"blob": "x" * 200})


def test_data_is_checked_against_the_event_type_schema():
    EventType.objects.create(
        name="order.created",
        schema={"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}},
    )
    with pytest.raises(SchemaValidationError, match="id"):
        publish("order.created", {"id": "seven"})
    assert publish("order.created", {"id": 7}).pk


def _queries_on(queries, table: str) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if f'"{table}"' in q["sql"]]


def test_an_inline_fan_out_matches_once(django_capture_on_commit_callbacks):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for n in range(3):
        make_subscription(f"http://127.0.0.1:9/{n}", ["order.*"])
    with (
        CaptureQueriesContext(connection) as queries,
        django_capture_on_commit_callbacks(execute=True),
    ):
        publication = publish_event("order.created", {"n": 1})
    assert publication.deliveries == 3
    # One query chooses the subscriptions; the fan-out uses its answer, nothing counts again.
    matching = [
        sql
        for sql in _queries_on(queries, Subscription._meta.db_table)
        if "json_each" in sql or "?|" in sql
    ]
    assert len(matching) == 1, matching


def test_schemas_and_tenants_are_cached_until_saved_or_deleted():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from subscriptions.models import Tenant

    EventType.objects.create(name="order.created")
    publish("order.created", {"n": 1}, tenant="t1")
    with CaptureQueriesContext(connection) as queries:
        publish("order.created", {"n": 2}, tenant="t1")
    assert not _queries_on(queries, EventType._meta.db_table)
    assert not _queries_on(queries, Tenant._meta.db_table)

    # Saved: the next publish checks the new schema.
    kind = EventType.objects.get(name="order.created")
    kind.schema = {"type": "object", "required": ["id"]}
    kind.save()
    with pytest.raises(SchemaValidationError):
        publish("order.created", {"n": 3}, tenant="t1")
    kind.delete()  # deleted: no schema any more
    publish("order.created", {"n": 4}, tenant="t1")

    # A deleted tenant is not taken for existing: its row is made again on the next publish.
    Event.objects.filter(tenant_id="t1").delete()
    Tenant.objects.get(pk="t1").delete()
    publish("order.created", {"n": 5}, tenant="t1")
    assert Tenant.objects.filter(pk="t1").exists()


def test_publish_counts_skipped_deliveries_for_disabled_endpoints(
    django_capture_on_commit_callbacks,
):
    # Issue 28: the tenant's only endpoint is disabled; the answer said "deliveries": 0 and
    # nothing of the skipped rows that are later offered for replay.
    make_subscription("http://127.0.0.1:9/off", ["order.*"], is_active=False)
    make_subscription("http://127.0.0.1:9/off2", ["*"], is_active=False)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        event = publish("order.created", {"id": 1})
    # Inside the caller's transaction nothing is fanned out yet: no figures.
    assert (event.delivery_count, event.skipped_count) == (None, None)
    for callback in callbacks:
        callback()
    assert (event.delivery_count, event.skipped_count) == (0, 2)
    assert Delivery.objects.filter(event=event, status=DeliveryStatus.SKIPPED).count() == 2
