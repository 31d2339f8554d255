"""Subscriptions' `filter` and `channels` and events' `channels`: validation (model, API) and
the fan-out that applies them (DESIGN.md, Flow "Channels", HTTP API, Filters)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deliveries.models import Delivery, Event
from deliveries.services import PublishError, publish, publish_event
from subscriptions.filterlang import to_jsonpath
from subscriptions.models import EventType, Subscription
from tests.factories import api_client, make_subscription, make_tenant_user, make_user
from tests.stubdns import resolving

pytestmark = pytest.mark.django_db


def receivers(event: Event) -> set:
    return set(Delivery.objects.filter(event=event).values_list("subscription_id", flat=True))


def test_a_subscription_receives_only_the_events_its_filter_matches(
    django_capture_on_commit_callbacks,
):
    big = make_subscription(
        "http://127.0.0.1:9/big", ["order.*"], filter={"data.total": {"$gte": 100}}
    )
    eu = make_subscription(
        "http://127.0.0.1:9/eu", ["order.*"], filter={"data.customer.region": "eu"}
    )
    every = make_subscription("http://127.0.0.1:9/all", ["order.*"])
    with django_capture_on_commit_callbacks(execute=True):
        large = publish_event("order.created", {"total": 250, "customer": {"region": "us"}})
        small_eu = publish_event("order.created", {"total": 5, "customer": {"region": "eu"}})
        neither = publish_event("order.paid", {"total": "250"})  # a string is not a number
    assert receivers(large.event) == {big.pk, every.pk}
    assert receivers(small_eu.event) == {eu.pk, every.pk}
    assert receivers(neither.event) == {every.pk}
    assert (large.deliveries, small_eu.deliveries, neither.deliveries) == (2, 2, 1)


def test_a_filter_on_type_and_channels_applies_in_the_fan_out(django_capture_on_commit_callbacks):
    sub = make_subscription(
        "http://127.0.0.1:9/x",
        ["*"],
        filter={"$or": [{"type": "invoice.sent"}, {"channels": "vip"}]},
    )
    with django_capture_on_commit_callbacks(execute=True):
        invoice = publish("invoice.sent", {})
        vip = publish("order.created", {}, channels=["vip"])
        plain = publish("order.created", {})
    assert (receivers(invoice), receivers(vip), receivers(plain)) == ({sub.pk}, {sub.pk}, set())


def test_channels_route_as_svix_does(django_capture_on_commit_callbacks):
    eu = make_subscription("http://127.0.0.1:9/eu", ["*"], channels=["eu"])
    eu_or_us = make_subscription("http://127.0.0.1:9/both", ["*"], channels=["us", "eu"])
    every = make_subscription("http://127.0.0.1:9/all", ["*"])
    with django_capture_on_commit_callbacks(execute=True):
        to_eu = publish("order.created", {}, channels=["eu"])
        to_us_ap = publish("order.created", {}, channels=["ap", "us"])
        to_none = publish("order.created", {})
    assert receivers(to_eu) == {eu.pk, eu_or_us.pk, every.pk}
    assert receivers(to_us_ap) == {eu_or_us.pk, every.pk}
    # An event without channels reaches only subscriptions without channels.
    assert receivers(to_none) == {every.pk}
    assert Event.objects.get(pk=to_us_ap.pk).channels == ["ap", "us"]


def test_a_disabled_subscription_is_skipped_only_if_its_filter_matches(
    django_capture_on_commit_callbacks,
):
    off = make_subscription("http://127.0.0.1:9/off", ["*"], filter={"data.n": 1}, is_active=False)
    with django_capture_on_commit_callbacks(execute=True):
        matching = publish("a.b", {"n": 1})
        other = publish("a.b", {"n": 2})
    assert Delivery.objects.get(event=matching).subscription_id == off.pk
    assert not Delivery.objects.filter(event=other).exists()


def test_a_large_fan_out_counts_and_routes_with_filters(
    settings, django_capture_on_commit_callbacks
):
    from deliveries.services.publishing import expected_deliveries, fan_out

    settings.WEBHOOKS = {**settings.WEBHOOKS, "FAN_OUT_INLINE_MAX": 2}
    wanted = {
        make_subscription(f"http://127.0.0.1:9/{i}", ["*"], filter={"data.n": {"$lt": 10}}).pk
        for i in range(3)
    }
    for i in range(3):
        make_subscription(f"http://127.0.0.1:9/no{i}", ["*"], filter={"data.n": {"$gt": 10}})
    with django_capture_on_commit_callbacks(execute=True):
        publication = publish_event("a.b", {"n": 1})
    # More candidates than FAN_OUT_INLINE_MAX: handed to the fan-out task, counted here.
    assert publication.event.fanned_out_at is None
    assert publication.deliveries == expected_deliveries(publication.event) == 3
    assert fan_out(publication.event.pk) == 3
    assert receivers(publication.event) == wanted


def test_publish_refuses_malformed_channels():
    for channels, problem in [
        ("eu", "a list"),
        (["e u"], "[0]: a channel name"),
        ([f"c{i}" for i in range(11)], "At most 10"),
        ([7], "[0]"),
    ]:
        with pytest.raises(PublishError) as caught:
            publish("a.b", {}, channels=channels)
        assert caught.value.field == "channels" and problem in caught.value.message


def test_the_model_validates_filter_and_channels():
    sub = Subscription(url="https://hooks.example.com/x", event_types=["*"])
    sub.filter = {"data.a": {"$gt": None}}
    sub.channels = ["ok", "not ok"]
    with pytest.raises(ValidationError) as caught:
        sub.full_clean(exclude=["tenant"])
    assert "data.a > $gt" in str(caught.value.message_dict["filter"])
    assert "[1]" in str(caught.value.message_dict["channels"])


def test_the_fan_out_reads_candidates_in_one_query_and_evaluates_each_filter_once(
    django_capture_on_commit_callbacks, monkeypatch
):
    from subscriptions import models as subscription_models

    for i in range(5):
        make_subscription(f"http://127.0.0.1:9/{i}", ["a.*"], filter={"data.n": i})
    make_subscription("http://127.0.0.1:9/other-type", ["b.*"], filter={"data.n": 1})
    make_subscription("http://127.0.0.1:9/other-tenant", ["a.*"], tenant="t2", filter={"data.n": 1})
    seen = []
    real = subscription_models.matches
    monkeypatch.setattr(
        subscription_models, "matches", lambda f, doc: seen.append(f) or real(f, doc)
    )
    with (
        CaptureQueriesContext(connection) as queries,
        django_capture_on_commit_callbacks(execute=True),
    ):
        event = publish("a.x", {"n": 1})
    assert len(receivers(event)) == 1
    routing = [q["sql"] for q in queries.captured_queries if '"filter"' in q["sql"]]
    assert len(routing) == 1
    if connection.vendor == "postgresql":
        # The database evaluates the compiled filters in the routing query itself: the four
        # that say no are never read, and Python evaluates none.
        assert "jsonb_path_match" in routing[0]
        assert seen == []
    else:
        # Only the tenant's subscriptions of the type are read; each filter evaluated once.
        assert sorted(f["data.n"] for f in seen) == [0, 1, 2, 3, 4]


def test_a_filter_without_a_compiled_form_is_evaluated_in_python_in_the_same_fan_out(
    django_capture_on_commit_callbacks, monkeypatch
):
    """A subscription whose filter has no compiled form (to_jsonpath gave None: here made so
    by hand, as no valid filter needs it today) is routed by matches() in the same query's
    results, beside compiled ones evaluated by the database."""
    from subscriptions import models as subscription_models

    compiled = make_subscription("http://127.0.0.1:9/c", ["a.*"], filter={"data.n": {"$gte": 1}})
    refused = make_subscription("http://127.0.0.1:9/r", ["a.*"], filter={"data.n": {"$gte": 9}})
    left = make_subscription("http://127.0.0.1:9/l", ["a.*"], filter={"data.n": 1})
    left_no = make_subscription("http://127.0.0.1:9/ln", ["a.*"], filter={"data.n": 2})
    Subscription.objects.filter(pk__in=[left.pk, left_no.pk]).update(filter_jsonpath=None)
    seen = []
    real = subscription_models.matches
    monkeypatch.setattr(
        subscription_models, "matches", lambda f, doc: seen.append(f) or real(f, doc)
    )
    with django_capture_on_commit_callbacks(execute=True):
        publication = publish_event("a.x", {"n": 1})
    assert receivers(publication.event) == {compiled.pk, left.pk}
    assert publication.deliveries == 2
    if connection.vendor == "postgresql":
        assert sorted(f["data.n"] for f in seen) == [1, 2]  # the two left to Python
    else:
        assert len(seen) == 4
    assert refused.pk not in receivers(publication.event)


def test_every_write_of_a_filter_keeps_its_compiled_form():
    sub = make_subscription("http://127.0.0.1:9/x", ["*"], filter={"data.a": 1})
    assert sub.filter_jsonpath == to_jsonpath({"data.a": 1}) is not None
    sub.filter = {"data.a": 2}
    sub.save(update_fields=["filter"])
    assert Subscription.objects.get(pk=sub.pk).filter_jsonpath == to_jsonpath({"data.a": 2})
    sub.filter = {}
    sub.save()
    assert Subscription.objects.get(pk=sub.pk).filter_jsonpath is None
    [bulk] = Subscription.objects.bulk_create(
        [Subscription(url="http://127.0.0.1:9/b", event_types=["*"], filter={"type": "t"})]
    )
    assert Subscription.objects.get(pk=bulk.pk).filter_jsonpath == to_jsonpath({"type": "t"})


def test_the_data_migration_compiles_existing_filters():
    import importlib

    from django.apps import apps

    migration = importlib.import_module(
        "subscriptions.migrations.0014_subscription_filter_jsonpath"
    )
    old = make_subscription("http://127.0.0.1:9/x", ["*"], filter={"data.a": {"$in": [1, "1"]}})
    plain = make_subscription("http://127.0.0.1:9/y", ["*"])
    Subscription.objects.filter(pk=old.pk).update(filter_jsonpath=None)

    class Editor:
        pass

    editor = Editor()
    editor.connection = connection  # type: ignore[attr-defined]
    migration.compile_filters(apps, editor)
    assert Subscription.objects.get(pk=old.pk).filter_jsonpath == to_jsonpath(old.filter)
    assert Subscription.objects.get(pk=plain.pk).filter_jsonpath is None


# -- the API -----------------------------------------------------------------------------------

PUBLIC = {"hooks.example.com": ["93.184.215.14"]}


@pytest.fixture
def owner():
    EventType.objects.create(name="order.created")
    with resolving(PUBLIC):
        yield api_client(make_tenant_user("owner", "org_a"))


def create(client, **extra):
    body = {"url": "https://hooks.example.com/in", "event_types": ["order.created"], **extra}
    return client.post("/api/subscriptions/", body, format="json")


def test_the_api_stores_and_shows_filter_and_channels(owner):
    filter = {"data.total": {"$gte": 100}, "$not": {"channels": "test"}}
    response = create(owner, filter=filter, channels=["eu", "eu", "us"])
    assert response.status_code == 201, response.data
    assert response.data["filter"] == filter
    assert response.data["channels"] == ["eu", "us"]
    sub = Subscription.objects.get(pk=response.data["id"])
    assert (sub.filter, sub.channels) == (filter, ["eu", "us"])
    # Compiled on save for the fan-out's SQL; internal, never in the API's answer.
    assert sub.filter_jsonpath == to_jsonpath(filter) is not None
    assert "filter_jsonpath" not in response.data
    # PATCH replaces them (and the compiled form); null clears the filter.
    response = owner.patch(
        f"/api/subscriptions/{sub.pk}/", {"filter": {"type": "x"}}, format="json"
    )
    assert response.status_code == 200, response.data
    sub.refresh_from_db()
    assert sub.filter_jsonpath == to_jsonpath({"type": "x"})
    response = owner.patch(
        f"/api/subscriptions/{sub.pk}/", {"filter": None, "channels": []}, format="json"
    )
    assert response.status_code == 200, response.data
    sub.refresh_from_db()
    assert (sub.filter, sub.channels, sub.filter_jsonpath) == ({}, [], None)
    # Omitted: no filter, every channel.
    assert create(owner).data["filter"] == {} and create(owner).data["channels"] == []


@pytest.mark.parametrize(
    "field, value, text",
    [
        ("filter", {"$or": [{"data.a": 1}, {"data.b": {"$gt": [1]}}]}, "$or[1] > data.b > $gt"),
        ("filter", {"total": 1}, "total: a path is"),
        ("filter", "data.a = 1", "(top): a filter is a JSON object"),
        ("channels", ["eu", "e u"], "[1]: a channel name"),
        ("channels", "eu", "list"),
    ],
)
def test_the_api_refuses_a_bad_filter_or_channels_with_a_field_error(owner, field, value, text):
    response = create(owner, **{field: value})
    assert response.status_code == 400
    assert set(response.data) == {field}
    assert text in " ".join(str(m) for m in response.data[field])


def test_events_take_channels_in_the_api(django_capture_on_commit_callbacks):
    client = api_client(make_user("publisher", "add_event", "view_event"))
    sub = make_subscription("http://127.0.0.1:9/eu", ["*"], channels=["eu"])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/events/", {"type": "a.b", "data": {}, "channels": ["eu"]}, format="json"
        )
    assert response.status_code == 202, response.data
    assert response.data["deliveries"] == 1
    assert Delivery.objects.get(event_id=response.data["id"]).subscription_id == sub.pk
    shown = client.get(f"/api/events/{response.data['id']}/")
    assert shown.data["channels"] == ["eu"]
    refused = client.post(
        "/api/events/", {"type": "a.b", "data": {}, "channels": ["no spaces"]}, format="json"
    )
    assert refused.status_code == 400 and set(refused.data) == {"channels"}


# -- the admin ---------------------------------------------------------------------------------


def admin_form(**extra):
    return {
        "url": "http://127.0.0.1:9/hook",
        "description": "from the admin",
        "event_types": '["*"]',
        "is_active": "on",
        "payload_format": "standard",
        "headers": "",
        **extra,
    }


def test_the_admin_sets_filter_and_channels(admin_client):
    from django.urls import reverse

    url = reverse("admin:webhook_subscriptions_subscription_add")
    response = admin_client.post(
        url, admin_form(filter='{"data.total": {"$gte": 100}}', channels='["eu"]')
    )
    assert response.status_code == 200
    sub = Subscription.objects.get(description="from the admin")
    assert (sub.filter, sub.channels) == ({"data.total": {"$gte": 100}}, ["eu"])
    assert sub.filter_jsonpath == to_jsonpath({"data.total": {"$gte": 100}}) is not None
    page = admin_client.get(
        reverse("admin:webhook_subscriptions_subscription_change", args=[sub.pk])
    )
    assert b"data.total" in page.content
    # Left empty: no filter, every channel.
    admin_client.post(url, admin_form(description="plain", filter="", channels=""))
    plain = Subscription.objects.get(description="plain")
    assert (plain.filter, plain.channels) == ({}, [])


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("filter", '{"data.a": {"$gt": null}}', b"data.a &gt; $gt: $gt compares with a number"),
        ("channels", '["e u"]', b"[0]: a channel name"),
    ],
)
def test_the_admin_refuses_what_the_api_refuses(admin_client, field, value, message):
    from django.urls import reverse

    response = admin_client.post(
        reverse("admin:webhook_subscriptions_subscription_add"), admin_form(**{field: value})
    )
    assert message in response.content
    assert not Subscription.objects.filter(description="from the admin").exists()
