"""Event contracts: types declared with DRF serializers, versions pinned per subscription,
down-converters, the catalog, and the version on the wire (docs/contracts.md)."""

from __future__ import annotations

import datetime as dt
import json
import logging
from decimal import Decimal

import jsonschema
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from rest_framework import serializers

from deliveries.models import Delivery, Event
from deliveries.payloads import build_body
from deliveries.services import SchemaValidationError, fan_out, publish
from subscriptions.catalog import pinned_types, sync_catalog
from subscriptions.checks import check_contracts
from subscriptions.contract_schema import serializer_schema
from subscriptions.contracts import ContractError, ContractRegistry, contracts
from subscriptions.models import EventType, EventTypeVersion, PayloadFormat, Subscription
from tests.contract_types import NAME, OrderV1, OrderV2, OrderV3, an_order, v3_to_v2
from tests.factories import api_client, make_subscription, make_tenant_user, make_user

pytestmark = pytest.mark.django_db


def published(data_or_instance, **kwargs) -> Event:
    """Publish and fan out at once (autocommit in the test transaction has no commit)."""
    event = publish(NAME, data_or_instance, **kwargs)
    fan_out(event.pk)
    return event


# --- schemas from serializers --------------------------------------------------------------


def test_the_schema_of_a_serializer_is_generated_by_drf_spectacular():
    schema = serializer_schema(OrderV3)

    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["type"] == "object"
    assert schema["properties"]["id"]["type"] == "integer"
    assert schema["properties"]["total"]["type"] == "string"
    assert schema["properties"]["placed_at"]["format"] == "date-time"
    # allow_null becomes a JSON Schema type union (OpenAPI 3.1), not OpenAPI 3.0's "nullable".
    assert schema["properties"]["note"]["type"] == ["string", "null"]
    # Nested serializers are $defs, referenced locally: the schema stands alone.
    assert schema["properties"]["lines"]["items"] == {"$ref": "#/$defs/Line"}
    assert schema["$defs"]["Line"]["required"] == ["qty", "sku"]
    assert sorted(schema["required"]) == ["currency", "id", "lines", "placed_at", "total"]
    jsonschema.Draft202012Validator.check_schema(schema)


def test_the_serializers_own_output_matches_its_schema():
    data = json.loads(json.dumps(OrderV3(an_order()).data))
    jsonschema.validate(data, serializer_schema(OrderV3))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**data, "lines": [{"sku": "A"}]}, serializer_schema(OrderV3))


def test_declarations_that_cannot_work_are_refused_at_once():
    registry = ContractRegistry()
    registry.register("a.b", serializer=OrderV3, version=1)
    with pytest.raises(ImproperlyConfigured, match="already declared"):
        registry.register("a.b", serializer=OrderV2, version=1)
    with pytest.raises(ImproperlyConfigured, match="event type name"):
        registry.register("a b", serializer=OrderV3)
    with pytest.raises(ImproperlyConfigured, match=r"1\.\.32767"):
        registry.register("a.b", serializer=OrderV3, version=0)
    with pytest.raises(ImproperlyConfigured, match="DRF class"):
        registry.register("a.b", serializer=dict)  # type: ignore[arg-type]
    with pytest.raises(ImproperlyConfigured, match="one step"):
        registry.downgrade("a.b", 3, 1)
    # The same declaration again (a module imported twice) is fine.
    registry.register("a.b", serializer=OrderV3, version=1)


def test_the_system_check_names_a_missing_down_converter_and_a_wrong_example():
    contracts.register("check.me", serializer=OrderV1, version=1)
    contracts.register("check.me", serializer=OrderV2, version=2, example={"id": "seven"})
    try:
        messages = [m for m in check_contracts() if "check.me" in m.msg]
        assert {m.id for m in messages} == {"webhooks.E021"}
        assert any("@downgrade('check.me', 2, 1)" in m.msg for m in messages)
        assert any("v2: the example does not match" in m.msg for m in messages)
    finally:
        contracts.forget("check.me")
    assert not [m for m in check_contracts() if "check.me" in m.msg]


# --- the catalog ------------------------------------------------------------------------------


def test_the_catalog_lists_every_version_with_schema_example_and_deprecation(contract_types):
    reader = make_tenant_user("reader", "acme")

    answer = api_client(reader).get(f"/api/event-types/{NAME}/")

    assert answer.status_code == 200
    body = answer.json()
    assert body["declared"] is True
    assert body["description"] == "An order was placed."
    assert [v["version"] for v in body["versions"]] == [1, 2, 3]
    assert [v["deprecated"] for v in body["versions"]] == [True, False, False]
    v1, v2, v3 = body["versions"]
    assert v3["schema"] == serializer_schema(OrderV3)
    assert body["schema"] == v3["schema"]  # the type's schema is its latest version's
    assert v3["example"]["lines"] == [{"sku": "A-1", "qty": 2}]
    # Older versions without an example of their own get the newer one rendered down.
    assert v2["example"] == {"id": 7, "total": "12.50", "placed_at": "2026-01-31T12:00:00Z"}
    assert v1["example"] == {"id": 7, "amount_cents": 1250}
    for version in body["versions"]:
        jsonschema.validate(version["example"], version["schema"])


def test_hand_typed_types_keep_working_beside_declared_ones(contract_types):
    admin = make_user("admin", "add_eventtype", "change_eventtype")
    created = api_client(admin).post(
        "/api/event-types/",
        {"name": "invoice.paid", "schema": {"type": "object", "required": ["id"]}},
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["versions"] == [] and created.json()["declared"] is False

    with pytest.raises(SchemaValidationError):
        publish("invoice.paid", {"no": "id"})
    event = publish("invoice.paid", {"id": 1})
    assert event.version is None and event.renditions == {}


def test_a_declared_type_is_changed_in_code_only(contract_types):
    admin = make_user("admin", "change_eventtype", "delete_eventtype")
    client = api_client(admin)

    changed = client.patch(f"/api/event-types/{NAME}/", {"description": "x"}, format="json")
    deleted = client.delete(f"/api/event-types/{NAME}/")

    assert changed.status_code == 400 and "declared in code" in changed.content.decode()
    assert deleted.status_code == 400
    assert EventType.objects.get(name=NAME).description == "An order was placed."


def test_sync_drops_versions_no_longer_declared_and_keeps_their_first_date(contract_types):
    first = EventTypeVersion.objects.get(event_type__name=NAME, version=3).created_at
    contracts.forget(NAME)
    contracts.register(NAME, serializer=OrderV2, version=2)
    contracts.register(NAME, serializer=OrderV3, version=3)
    contracts.downgrade(NAME, 3, 2)(v3_to_v2)

    sync_catalog()

    rows = EventTypeVersion.objects.filter(event_type__name=NAME)
    assert sorted(rows.values_list("version", flat=True)) == [2, 3]
    assert rows.get(version=3).created_at == first

    contracts.forget(NAME)
    sync_catalog()
    assert EventType.objects.get(name=NAME).declared is False


# --- pins ----------------------------------------------------------------------------------


def test_a_new_subscription_is_pinned_to_the_latest_version_of_each_selected_type(
    contract_types,
):
    owner = make_tenant_user("owner", "acme")
    client = api_client(owner)

    created = client.post(
        "/api/subscriptions/",
        {"url": "http://127.0.0.1:9/hook", "event_types": ["shop.*"]},
        format="json",
    )
    other = client.post(
        "/api/subscriptions/",
        {"url": "http://127.0.0.1:9/other", "event_types": ["user.*"]},
        format="json",
    )

    assert created.status_code == 201, created.content
    assert created.json()["versions"] == {NAME: 3}
    assert other.json()["versions"] == {}


def test_a_subscription_moves_between_versions_but_never_to_a_deprecated_one(contract_types):
    owner = make_tenant_user("owner", "acme")
    client = api_client(owner)
    created = client.post(
        "/api/subscriptions/",
        {"url": "http://127.0.0.1:9/hook", "event_types": [NAME], "versions": {NAME: 2}},
        format="json",
    ).json()
    url = f"/api/subscriptions/{created['id']}/"
    assert created["versions"] == {NAME: 2}

    to_deprecated = client.patch(url, {"versions": {NAME: 1}}, format="json")
    unknown_version = client.patch(url, {"versions": {NAME: 9}}, format="json")
    undeclared = client.patch(url, {"versions": {"order.created": 1}}, format="json")
    not_a_number = client.patch(url, {"versions": {NAME: "two"}}, format="json")
    moved = client.patch(url, {"versions": {NAME: 3}}, format="json")

    assert to_deprecated.status_code == 400
    assert "deprecated" in to_deprecated.json()["versions"][0]
    assert unknown_version.status_code == 400
    assert "declared: 1, 2, 3" in unknown_version.json()["versions"][0]
    assert undeclared.status_code == 400 and "not declared" in undeclared.json()["versions"][0]
    assert not_a_number.status_code == 400
    assert moved.status_code == 200 and moved.json()["versions"] == {NAME: 3}


def test_a_pin_already_on_a_deprecated_version_may_stay(contract_types):
    sub = make_subscription("https://example.com/h", [NAME], versions={NAME: 1}, tenant="acme")
    client = api_client(make_tenant_user("owner", "acme"))

    kept = client.patch(
        f"/api/subscriptions/{sub.pk}/", {"description": "d", "versions": {NAME: 1}}, format="json"
    )

    assert kept.status_code == 200, kept.content
    assert kept.json()["versions"] == {NAME: 1}


def test_an_unpinned_subscription_gets_the_version_declared_before_it_was_created(
    contract_types,
):
    rows = EventTypeVersion.objects.filter(event_type__name=NAME)
    long_ago = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    rows.filter(version__in=[1, 2]).update(created_at=long_ago)
    rows.filter(version=3).update(created_at=long_ago + dt.timedelta(days=365))
    older = make_subscription("https://example.com/old", [NAME])
    Subscription.objects.filter(pk=older.pk).update(created_at=long_ago + dt.timedelta(days=1))
    newer = make_subscription("https://example.com/new", [NAME])

    event = published(an_order())

    versions = dict(Delivery.objects.filter(event=event).values_list("subscription", "version"))
    assert versions == {older.pk: 2, newer.pk: 3}
    assert [p.current for p in pinned_types(Subscription.objects.get(pk=older.pk))] == [2]


# --- publishing and the wire ------------------------------------------------------------------


def test_publish_serializes_an_instance_and_renders_every_older_version(contract_types):
    event = published(an_order(note=None))

    assert event.version == 3
    assert event.data == {
        "id": 1001,
        "total": "42.00",
        "currency": "EUR",
        "placed_at": "2026-03-01T09:30:00Z",
        "lines": [{"sku": "A-1", "qty": 2}, {"sku": "B-7", "qty": 1}],
        "note": None,
    }
    assert event.renditions == {
        "2": {"id": 1001, "total": "42.00", "placed_at": "2026-03-01T09:30:00Z"},
        "1": {"id": 1001, "amount_cents": 4200},
    }


def test_each_delivery_records_and_sends_its_subscriptions_version(contract_types):
    on_v1 = make_subscription("https://example.com/1", [NAME], versions={NAME: 1})
    on_v2 = make_subscription("https://example.com/2", ["shop.*"], versions={NAME: 2})
    on_v3 = make_subscription("https://example.com/3", ["*"], versions={NAME: 3})
    cloud = make_subscription(
        "https://example.com/ce", [NAME], versions={NAME: 2}, payload_format="cloudevents"
    )

    event = published(an_order())

    deliveries = {d.subscription_id: d for d in Delivery.objects.filter(event=event)}
    assert {pk: d.version for pk, d in deliveries.items()} == {
        on_v1.pk: 1,
        on_v2.pk: 2,
        on_v3.pk: 3,
        cloud.pk: 2,
    }
    body = json.loads(build_body(event, PayloadFormat.STANDARD, deliveries[on_v1.pk].version))
    assert body["version"] == 1 and body["data"] == {"id": 1001, "amount_cents": 4200}
    assert list(body) == ["type", "version", "timestamp", "data"]
    body = json.loads(build_body(event, PayloadFormat.STANDARD, deliveries[on_v3.pk].version))
    assert body["version"] == 3 and body["data"] == event.data
    ce = json.loads(build_body(event, PayloadFormat.CLOUDEVENTS, deliveries[cloud.pk].version))
    assert ce["dataschema"] == f"urn:webhooks:schema:{NAME}:v2"
    assert ce["data"] == event.renditions["2"]


def test_unversioned_events_keep_the_body_they_always_had():
    event = publish("order.created", {"id": 1})

    body = json.loads(build_body(event, PayloadFormat.STANDARD, None))
    cloud = json.loads(build_body(event, PayloadFormat.CLOUDEVENTS, None))

    assert list(body) == ["type", "timestamp", "data"]
    assert "dataschema" not in cloud


def test_a_pin_the_event_cannot_be_sent_in_gets_the_events_own_version(contract_types):
    event = published(an_order())
    # A version declared after the event was published has no rendition of it.
    body = json.loads(build_body(event, PayloadFormat.STANDARD, 4))
    assert body["version"] == 3 and body["data"] == event.data


def test_published_dicts_are_checked_against_the_latest_schema(contract_types):
    client = api_client(make_user("publisher", "add_event"))
    bad = client.post("/api/events/", {"type": NAME, "data": {"id": 1}}, format="json")
    good = client.post(
        "/api/events/",
        {"type": NAME, "data": json.loads(json.dumps(OrderV3(an_order()).data))},
        format="json",
    )

    assert bad.status_code == 400 and "does not match the schema" in bad.json()["data"][0]
    assert good.status_code == 202, good.content
    assert Event.objects.get(pk=good.json()["id"]).renditions["1"]["amount_cents"] == 4200


def test_a_down_converter_that_misses_its_schema_fails_the_publish_in_tests(contract_types):
    contracts.forget(NAME)
    contracts.register(NAME, serializer=OrderV2, version=2)
    contracts.register(NAME, serializer=OrderV3, version=3)
    contracts.downgrade(NAME, 3, 2)(lambda data: {"id": str(data["id"])})

    with pytest.raises(ContractError, match="output for v2 does not match the schema"):
        publish(NAME, an_order())
    assert not Event.objects.exists()


def test_in_production_a_mismatching_down_converter_is_logged_and_the_event_sent(
    contract_types, caplog
):
    contracts.forget(NAME)
    contracts.register(NAME, serializer=OrderV2, version=2)
    contracts.register(NAME, serializer=OrderV3, version=3)
    contracts.downgrade(NAME, 3, 2)(lambda data: {"id": str(data["id"])})

    with (
        override_settings(WEBHOOKS={"DOWNGRADE_ERRORS": "log"}),
        caplog.at_level(logging.ERROR, logger="deliveries.versions"),
    ):
        event = publish(NAME, an_order())

    assert event.renditions == {"2": {"id": "1001"}}
    assert "output for v2 does not match the schema at (root)" in caplog.text


def test_a_failing_down_converter_always_fails_the_publish(contract_types):
    contracts.forget(NAME)
    contracts.register(NAME, serializer=OrderV2, version=2)
    contracts.register(NAME, serializer=OrderV3, version=3)
    contracts.downgrade(NAME, 3, 2)(lambda data: data["missing"])

    with (
        override_settings(WEBHOOKS={"DOWNGRADE_ERRORS": "log"}),
        pytest.raises(ContractError, match="from v3 to v2 failed: KeyError"),
    ):
        publish(NAME, an_order())


# --- previews --------------------------------------------------------------------------------


def test_the_preview_renders_the_subscriptions_last_real_event(contract_types):
    owner = make_tenant_user("owner", "acme")
    sub = make_subscription("https://example.com/h", [NAME], versions={NAME: 2}, tenant="acme")
    published(an_order(id=1), tenant="acme")
    last = published(an_order(id=2, total=Decimal("9.99")), tenant="acme")
    client = api_client(owner)

    answer = client.get(f"/api/subscriptions/{sub.pk}/versions/preview/?type={NAME}&version=3")

    assert answer.status_code == 200, answer.content
    preview = answer.json()
    assert preview["source"] == "event" and preview["event"] == str(last.pk)
    assert preview["body"]["version"] == 3
    assert preview["body"]["data"]["total"] == "9.99"
    assert preview["body"]["data"]["lines"] == [{"sku": "A-1", "qty": 2}, {"sku": "B-7", "qty": 1}]


def test_without_an_event_the_preview_is_the_catalogs_example(contract_types):
    owner = make_tenant_user("owner", "acme")
    sub = make_subscription("https://example.com/h", [NAME], versions={NAME: 2}, tenant="acme")

    answer = api_client(owner).get(
        f"/api/subscriptions/{sub.pk}/versions/preview/?type={NAME}&version=1"
    )

    assert answer.json()["source"] == "example" and answer.json()["event"] is None
    assert answer.json()["body"]["data"] == {"id": 7, "amount_cents": 1250}


def test_the_preview_is_refused_for_strangers_and_bad_input(contract_types):
    sub = make_subscription("https://example.com/h", [NAME], tenant="acme")
    url = f"/api/subscriptions/{sub.pk}/versions/preview/"
    stranger = api_client(make_tenant_user("mallory", "evil"))
    owner = api_client(make_tenant_user("owner", "acme"))

    assert stranger.get(f"{url}?type={NAME}&version=3").status_code == 404
    assert owner.get(f"{url}?type={NAME}&version=9").json() == {
        "version": [f"'{NAME}' has no version 9."]
    }
    assert owner.get(f"{url}?type=order.created&version=1").status_code == 400
    assert owner.get(f"{url}?type={NAME}&version=x").status_code == 400
    assert owner.get(f"{url}?version=1").status_code == 400


# --- the portal ------------------------------------------------------------------------------


def portal_client(client, tenant: str):
    client.force_login(make_tenant_user(f"user-{tenant}", tenant))
    return client


def test_the_portal_moves_an_endpoint_to_a_newer_version(contract_types, client):
    sub = make_subscription("https://example.com/h", [NAME], versions={NAME: 2}, tenant="acme")
    published(an_order(), tenant="acme")
    portal = portal_client(client, "acme")
    url = f"/portal/endpoints/{sub.pk}/versions/{NAME}/"

    page = portal.get(url)
    preview = portal.get(url + "?version=3")
    deprecated = portal.post(url, {"version": 1})
    moved = portal.post(url, {"version": 3})

    assert page.status_code == 200
    assert "&quot;version&quot;: 3" in preview.content.decode()
    assert "&quot;currency&quot;: &quot;EUR&quot;" in preview.content.decode()
    assert deprecated.status_code == 400
    assert moved.status_code == 302
    assert Subscription.objects.get(pk=sub.pk).versions == {NAME: 3}


def test_the_portal_version_page_of_another_tenant_is_404(contract_types, client):
    sub = make_subscription("https://example.com/h", [NAME], versions={NAME: 2}, tenant="acme")
    portal = portal_client(client, "evil")
    url = f"/portal/endpoints/{sub.pk}/versions/{NAME}/"

    assert portal.get(url).status_code == 404
    assert portal.post(url, {"version": 3}).status_code == 404
    assert Subscription.objects.get(pk=sub.pk).versions == {NAME: 2}


def test_the_portal_catalog_shows_each_version(contract_types, client):
    page = portal_client(client, "acme").get("/portal/event-types/").content.decode()

    for version in (1, 2, 3):
        assert f'id="type-shoporderplaced-v{version}"' in page
    assert "Deprecated" in page and "amount_cents" in page


def test_the_serializer_of_the_example_is_what_a_receiver_gets(contract_types):
    # The example in the catalog parses with the same serializer the host declared.
    example = EventTypeVersion.objects.get(event_type__name=NAME, version=3).example
    assert OrderV3(data=example).is_valid()
    assert isinstance(OrderV3(data=example).fields["lines"], serializers.ListSerializer)
