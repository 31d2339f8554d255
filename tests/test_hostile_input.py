"""Hostile input from publishers and subscribers: what cannot be
stored or processed is a clear 400 with a field error, never a 500; lists are capped; custom
header values never come back in clear.

Some inputs only fail on PostgreSQL (text and jsonb refuse U+0000): run on both databases.
"""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Permission
from django.test import override_settings
from rest_framework.test import APIClient

from deliveries.models import Event
from deliveries.services import PublishError, publish
from subscriptions.models import EventType, Subscription
from subscriptions.serializers import HEADER_MASK
from tests.factories import make_subscription, make_tenant_user

pytestmark = pytest.mark.django_db

# A host project whose DRF settings are DRF's defaults: no pagination, no custom parsers or
# exception handler, non-strict JSON off (STRICT_JSON defaults to True, so set it False to
# show the apps do not depend on it).
HOST_DRF = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "STRICT_JSON": False,
}


@pytest.fixture
def publisher(django_user_model):
    # Publishing and adding to the catalog need model permissions (is_staff alone grants none);
    # reading the default tenant's lists needs that tenant (logging in grants nothing).
    user = make_tenant_user("publisher", "default")
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["add_event", "add_eventtype"])
    )
    client = APIClient()
    client.force_authenticate(django_user_model.objects.get(pk=user.pk))
    return client


@pytest.fixture
def owner(django_user_model):
    user = make_tenant_user("owner", "default")
    client = APIClient()
    client.force_authenticate(user)
    client.user = user
    return client


def post_raw(client: APIClient, path: str, body: str, **headers: str):
    """POST a JSON text as written (escapes such as \\ud800 reach the parser unchanged)."""
    return client.generic("POST", path, body.encode(), content_type="application/json", **headers)


def deep(levels: int, leaf: str = "0") -> str:
    return "[" * levels + leaf + "]" * levels


# --- Event data and idempotency keys ---------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        r'{"s": "\ud800"}',  # a lone surrogate: not a Unicode scalar value (RFC 8259 §8.2)
        r'{"s": "a\udfffb"}',
        r'{"s": "a\u0000b"}',  # PostgreSQL jsonb cannot hold U+0000
        r'{"k\u0000": 1}',
        r'{"list": [1, {"deeper": "\ud83d"}]}',
    ],
)
def test_unstorable_event_data_is_a_400_with_a_data_error(publisher, data):
    response = post_raw(publisher, "/api/events/", f'{{"type": "order.created", "data": {data}}}')

    assert response.status_code == 400, response.content
    assert "data" in response.json(), response.json()
    assert Event.objects.count() == 0


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_in_the_body_are_a_400_even_if_the_host_allows_them(publisher, constant):
    with override_settings(REST_FRAMEWORK=HOST_DRF):
        response = post_raw(
            publisher, "/api/events/", f'{{"type": "order.created", "data": {{"n": {constant}}}}}'
        )

    assert response.status_code == 400, response.content
    assert response["content-type"].startswith("application/json")
    assert Event.objects.count() == 0


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"n": float("nan")}, "/n"),
        ({"n": [1, float("inf")]}, "/n/1"),
        ({"n": float("-inf")}, "/n"),
        ({"s": "a\x00b"}, "/s"),
        ({"s": "\udc80"}, "/s"),
    ],
)
def test_publish_refuses_unstorable_data_with_a_publish_error(data, where):
    with pytest.raises(PublishError) as info:
        publish("order.created", data)

    assert info.value.field == "data"
    assert where in info.value.message
    assert Event.objects.count() == 0


def test_data_nested_deeper_than_the_limit_is_refused(publisher, settings):
    settings.WEBHOOKS = {**settings.WEBHOOKS, "MAX_PAYLOAD_DEPTH": 5}
    ok = {"a": {"b": {"c": {"d": [1]}}}}  # five containers, the outermost included
    too_deep = {"a": {"b": {"c": {"d": [[1]]}}}}

    assert publish("order.created", ok).pk
    with pytest.raises(PublishError, match="deeper than 5"):
        publish("order.created", too_deep)
    response = publisher.post(
        "/api/events/", {"type": "order.created", "data": too_deep}, format="json"
    )
    assert response.status_code == 400 and "data" in response.json(), response.content
    assert Event.objects.count() == 1


def test_the_default_depth_limit_is_documented_and_generous():
    from deliveries.conf import DEFAULTS

    data: dict = {}
    node = data
    for _ in range(DEFAULTS["MAX_PAYLOAD_DEPTH"] - 1):
        node["x"] = {}
        node = node["x"]
    assert publish("order.created", data).pk
    node["x"] = {}
    with pytest.raises(PublishError):
        publish("order.created", data)


@pytest.mark.parametrize(
    "key",
    [
        "a\x00b",
        "\ud800",
        "tab\there",
        "line\nbreak",
        "k" * 256,
        "",
    ],
)
def test_bad_idempotency_keys_are_refused_in_publish(key):
    with pytest.raises(PublishError) as info:
        publish("order.created", {}, idempotency_key=key or " ")

    assert info.value.field == "idempotency_key"
    assert Event.objects.count() == 0


@pytest.mark.parametrize(
    "key_json",
    [r'"a\u0000b"', r'"\ud800"', r'"a\u0007b"', r'"new\nline"', json.dumps("k" * 256), '""'],
)
def test_bad_idempotency_keys_are_a_400_in_the_body(publisher, key_json):
    body = f'{{"type": "order.created", "data": {{}}, "idempotency_key": {key_json}}}'
    response = post_raw(publisher, "/api/events/", body)

    assert response.status_code == 400, response.content
    assert "idempotency_key" in response.json()
    assert Event.objects.count() == 0


def test_bad_idempotency_key_header_is_a_400(publisher):
    # A header arrives as Latin-1 text: control characters are the hostile kind here.
    response = publisher.post(
        "/api/events/",
        {"type": "order.created", "data": {}},
        format="json",
        HTTP_IDEMPOTENCY_KEY="a\x7fb",
    )

    assert response.status_code == 400, response.content
    assert "idempotency_key" in response.json()


def test_printable_idempotency_keys_work(publisher):
    for key in ("order-1001", "caf\u00e9 #7", "a b c", "\U0001f600"):
        first = publisher.post(
            "/api/events/",
            {"type": "order.created", "data": {}, "idempotency_key": key},
            format="json",
        )
        again = publisher.post(
            "/api/events/",
            {"type": "order.created", "data": {}, "idempotency_key": key},
            format="json",
        )
        assert first.status_code == again.status_code == 202, first.content
        assert again.json()["duplicate"] is True
    assert Event.objects.count() == 4


# --- Other strings publishers and subscribers store ------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/event-types/", r'{"name": "a.b", "description": "x\u0000y"}', "description"),
        ("/api/event-types/", r'{"name": "a.b", "description": "\ud800"}', "description"),
        (
            "/api/event-types/",
            r'{"name": "a.b", "schema": {"type": "object", "description": "x\u0000"}}',
            "schema",
        ),
        (
            "/api/event-types/",
            r'{"name": "a.b", "schema": {"title": "\udfff"}}',
            "schema",
        ),
        (
            "/api/event-types/",
            '{"name": "a.b", "schema": ' + '{"not": ' * 100 + "{}" + "}" * 100 + "}",
            "schema",
        ),
    ],
)
def test_unstorable_event_type_fields_are_a_400(publisher, path, body, field):
    response = post_raw(publisher, path, body)

    assert response.status_code == 400, response.content
    assert field in response.json()
    assert EventType.objects.count() == 0


@pytest.mark.parametrize(
    ("field", "value_json"),
    [
        ("description", r'"x\u0000y"'),
        ("description", r'"\ud800"'),
        ("url", r'"http://127.0.0.1:9/\u0000"'),
        ("event_types", r'["a.\u0000"]'),
        ("headers", r'{"X-A": "v\u0000"}'),
        ("headers", r'{"X-\ud800": "v"}'),
    ],
)
def test_unstorable_subscription_fields_are_a_400(owner, field, value_json):
    fields = {
        "url": '"http://127.0.0.1:9/hook"',
        "event_types": '["*"]',
        field: value_json,
    }
    body = "{" + ", ".join(f'"{name}": {value}' for name, value in fields.items()) + "}"
    response = post_raw(owner, "/api/subscriptions/", body)

    assert response.status_code == 400, response.content
    assert field in response.json()
    assert Subscription.objects.count() == 0


@pytest.mark.parametrize(
    "path",
    [
        "/api/event-types/a%00b/",
        "/api/subscriptions/a%00b/",
        "/api/events/a%00b/",
        "/api/deliveries/1%00/",
        "/api/deliveries/?type=a%00b",
        "/api/deliveries/?subscription=%00",
    ],
)
def test_nul_in_a_url_is_a_4xx_not_a_database_error(publisher, path):
    EventType.objects.create(name="a.b")

    response = publisher.get(path)

    assert 400 <= response.status_code < 500, response.content[:300]


# --- JSON nested 10,000 levels deep ----------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "who"),
    [
        ("/api/events/", "publisher"),
        ("/api/event-types/", "publisher"),
        ("/api/subscriptions/", "owner"),
        ("/api/subscriptions/{sub}/rotate-secret/", "owner"),
        ("/api/subscriptions/{sub}/replay/", "owner"),
    ],
)
@pytest.mark.parametrize("levels", [10_000, 300])
def test_deeply_nested_json_is_a_400_on_every_endpoint_that_reads_a_body(
    request, path, who, levels
):
    client = request.getfixturevalue(who)
    sub = make_subscription("http://127.0.0.1:9/hook", owner=getattr(client, "user", None))

    with override_settings(REST_FRAMEWORK=HOST_DRF):
        response = post_raw(client, path.format(sub=sub.pk), deep(levels))

    assert response.status_code == 400, response.content[:300]
    assert response["content-type"].startswith("application/json")
    assert "nested" in response.json()["detail"]


@pytest.mark.parametrize("path", ["/api/subscriptions/{sub}/test/", "/api/deliveries/{d}/retry/"])
def test_endpoints_that_ignore_the_body_do_not_fail_on_deep_json(publisher, path):
    sub = make_subscription("http://127.0.0.1:9/hook")
    event = Event.objects.create(type="order.created", data={})
    delivery = event.deliveries.create(subscription=sub, status="failed", attempts=1)

    response = post_raw(publisher, path.format(sub=sub.pk, d=delivery.pk), deep(10_000))

    assert response.status_code < 500, response.content[:300]


def test_deep_json_inside_the_event_data_is_a_400_in_a_host_without_settings(publisher):
    body = '{"type": "order.created", "data": {"x": ' + deep(10_000) + "}}"

    with override_settings(REST_FRAMEWORK=HOST_DRF):
        response = post_raw(publisher, "/api/events/", body)

    assert response.status_code == 400, response.content[:300]
    assert Event.objects.count() == 0


def test_patch_with_deep_json_is_a_400(owner):
    sub = make_subscription("http://127.0.0.1:9/hook", owner=owner.user)

    response = owner.generic(
        "PATCH",
        f"/api/subscriptions/{sub.pk}/",
        deep(10_000).encode(),
        content_type="application/json",
    )

    assert response.status_code == 400, response.content[:300]


# --- Every list is capped, with or without the host's DRF settings --------------------------


LISTS = ["/api/events/", "/api/deliveries/", "/api/subscriptions/", "/api/event-types/"]
CURSOR_LISTS = ["/api/events/", "/api/deliveries/"]


@pytest.fixture
def many_rows(django_user_model, publisher):
    from deliveries.models import Delivery

    user = django_user_model.objects.get(username="publisher")
    sub = make_subscription("http://127.0.0.1:9/hook", owner=user)
    Event.objects.bulk_create(Event(type="order.created", data={}) for _ in range(1205))
    Delivery.objects.bulk_create(
        Delivery(event=event, subscription=sub) for event in Event.objects.all()
    )
    Subscription.objects.bulk_create(
        Subscription(url=f"http://127.0.0.1:9/{n}", event_types=["*"], owner=user)
        for n in range(1204)
    )
    EventType.objects.bulk_create(EventType(name=f"t.n{n}") for n in range(1205))


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("host", [False, True], ids=["reference", "host-defaults"])
def test_every_list_is_paginated_and_capped(publisher, many_rows, path, host):
    rest = HOST_DRF if host else None
    with override_settings(**({"REST_FRAMEWORK": rest} if rest else {})):
        default = publisher.get(path)
        huge = publisher.get(path, {"limit": 1_000_000_000})
        # History lists are keyset pages (no count, no offset): the next page is `next`.
        cursor = path in CURSOR_LISTS
        second = (
            publisher.get(huge.json()["next"])
            if cursor
            else publisher.get(path, {"limit": 1000, "offset": 1000})
        )

    assert default.status_code == huge.status_code == second.status_code == 200
    assert ("count" not in default.json()) if cursor else (default.json()["count"] == 1205)
    assert len(default.json()["results"]) == 50
    assert len(huge.json()["results"]) == 1000, "limit is capped at MAX_PAGE_SIZE"
    assert huge.json()["next"]
    assert len(second.json()["results"]) == 205


def test_page_sizes_are_settings(publisher, many_rows, settings):
    settings.WEBHOOKS = {**settings.WEBHOOKS, "PAGE_SIZE": 7, "MAX_PAGE_SIZE": 20}

    assert len(publisher.get("/api/events/").json()["results"]) == 7
    assert len(publisher.get("/api/events/", {"limit": 10**9}).json()["results"]) == 20


@pytest.mark.parametrize("limit", ["-1", "abc", "0"])
def test_bad_limits_fall_back_to_the_default_page(publisher, many_rows, limit):
    response = publisher.get("/api/events/", {"limit": limit})

    assert response.status_code == 200
    assert len(response.json()["results"]) == 50


# --- Custom header values are write-only -----------------------------------------------------


HEADERS = {"Authorization": "Bearer s3cret", "X-Auth": "k3y", "X-Tenant": "acme"}


def create_with_headers(owner) -> dict:
    response = owner.post(
        "/api/subscriptions/",
        {"url": "http://127.0.0.1:9/hook", "event_types": ["*"], "headers": HEADERS},
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()


def test_header_values_are_masked_in_every_answer(owner):
    created = create_with_headers(owner)
    url = f"/api/subscriptions/{created['id']}/"

    answers = [
        created,
        owner.get(url).json(),
        owner.get("/api/subscriptions/").json()["results"][0],
        owner.patch(url, {"description": "renamed"}, format="json").json(),
    ]

    for answer in answers:
        assert answer["headers"] == {name: HEADER_MASK for name in HEADERS}, answer
        assert "s3cret" not in json.dumps(answer)
    assert Subscription.objects.get().headers == HEADERS


def test_patch_or_put_without_headers_keeps_them(owner):
    created = create_with_headers(owner)
    url = f"/api/subscriptions/{created['id']}/"

    owner.patch(url, {"description": "x"}, format="json")
    put = owner.put(url, {"url": created["url"], "event_types": ["*"]}, format="json")

    assert put.status_code == 200, put.content
    assert Subscription.objects.get().headers == HEADERS


def test_sending_the_masked_value_back_keeps_the_stored_value(owner):
    created = create_with_headers(owner)
    url = f"/api/subscriptions/{created['id']}/"
    echoed = owner.get(url).json()
    echoed["headers"]["X-Tenant"] = "globex"
    del echoed["headers"]["X-Auth"]

    response = owner.put(url, echoed, format="json")

    assert response.status_code == 200, response.content
    assert Subscription.objects.get().headers == {
        "Authorization": "Bearer s3cret",
        "X-Tenant": "globex",
    }


def test_the_mask_for_a_header_that_does_not_exist_is_a_400(owner):
    created = create_with_headers(owner)

    response = owner.patch(
        f"/api/subscriptions/{created['id']}/",
        {"headers": {"X-New": HEADER_MASK}},
        format="json",
    )
    fresh = owner.post(
        "/api/subscriptions/",
        {"url": "http://127.0.0.1:9/x", "event_types": ["*"], "headers": {"X-A": HEADER_MASK}},
        format="json",
    )

    assert response.status_code == fresh.status_code == 400
    assert "headers" in response.json() and "headers" in fresh.json()
    assert Subscription.objects.get().headers == HEADERS


def test_the_admin_never_shows_header_values_and_keeps_them_on_save(admin_client):
    from django.urls import reverse

    sub = make_subscription("http://127.0.0.1:9/hook", headers=HEADERS, description="masked")
    url = reverse("admin:webhook_subscriptions_subscription_change", args=[sub.pk])

    page = admin_client.get(url)
    shown = page.context["adminform"].form["headers"].value()
    assert b"s3cret" not in page.content and b"k3y" not in page.content
    # (PostgreSQL's jsonb keeps its own key order.)
    assert sorted(shown.splitlines()) == sorted(f"{name}: {HEADER_MASK}" for name in HEADERS)

    # Saving the form as shown keeps the values; a changed one replaces its header alone.
    edited = shown.replace(f"X-Tenant: {HEADER_MASK}", "X-Tenant: globex")
    response = admin_client.post(
        url,
        {
            "url": sub.url,
            "description": "masked",
            "event_types": '["*"]',
            "payload_format": "standard",
            "headers": edited,
        },
    )
    assert response.status_code == 302, response.content
    sub.refresh_from_db()
    assert sub.headers == {**HEADERS, "X-Tenant": "globex"}
