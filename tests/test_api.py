"""The HTTP API in-process: who may do what, and which input is refused with a 400."""

from __future__ import annotations

import base64
import re

import pytest
from django.contrib.auth.models import Permission
from django.test import override_settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from deliveries.models import DeliveryStatus, Event
from subscriptions import signals
from subscriptions.models import EventType, Subscription
from subscriptions.secrets import generate_secret
from tests.factories import make_subscription, make_tenant_user
from tests.ops_helpers import make_delivery
from tests.stubdns import resolving

pytestmark = pytest.mark.django_db

PUBLIC = {"hooks.example.com": ["93.184.215.14"], "other.example.net": ["2606:4700::1111"]}


@pytest.fixture(autouse=True)
def no_real_dns():
    with resolving(PUBLIC):
        yield


@pytest.fixture
def catalog():
    for name in ("order.created", "order.paid", "invoice.sent"):
        EventType.objects.create(name=name)


A, B = "tenant-a", "tenant-b"
# Every model permission of the two apps: what the SaaS backend's token or an operator holds.
ALL_WEBHOOK_PERMS = {"app_label__in": ["webhook_subscriptions", "deliveries"]}


@pytest.fixture
def users(django_user_model):
    from django.contrib.auth.models import Group

    from subscriptions.operators import OPERATORS_GROUP

    # The documented step that makes an operator: the "Webhooks operators" group.
    operator = django_user_model.objects.create_user("operator", password="pw-operator")
    operator.groups.add(Group.objects.get(name=OPERATORS_GROUP))
    return {
        # Tenant users (the reference resolver: a member of the group "tenant:<key>").
        "owner": make_tenant_user("owner", A, password="pw-owner"),
        "other": make_tenant_user("other", B, password="pw-other"),
        # `is_staff` alone grants nothing: no tenant, no permission.
        "staff": django_user_model.objects.create_user("boss", password="pw-boss", is_staff=True),
        # Logged in, no tenant, no permission: closed by default, logging in grants nothing.
        "nobody": django_user_model.objects.create_user("nobody", password="pw-nobody"),
        "operator": django_user_model.objects.get(pk=operator.pk),
        "superuser": django_user_model.objects.create_superuser("root", password="pw-root"),
    }


def _webhook_types():
    from django.contrib.contenttypes.models import ContentType

    return ContentType.objects.filter(**ALL_WEBHOOK_PERMS)


def client_for(user) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


@pytest.fixture
def owner_client(users):
    return client_for(users["owner"])


def new_body(**extra):
    return {"url": "https://hooks.example.com/in", "event_types": ["order.created"], **extra}


# --- Authorization matrix -------------------------------------------------------------------

SUB = "/api/subscriptions/{id}/"
# The subscription, event and delivery of the matrix belong to tenant A, managed by "owner".
# "staff" and "nobody" are logged in with neither a tenant nor a permission: 403 everywhere a
# tenant's objects are read or changed.
ACTORS = ["anonymous", "owner", "other", "staff", "nobody", "operator", "superuser"]
OWN = [401, 200, 404, 403, 403, 200, 200]  # tenant A's object: its users and permission holders
DENIED = [401, 403, 403, 403, 403, 200, 200]  # model permissions only
# (method, path, body, expected status per actor)
MATRIX = [
    ("get", "/api/subscriptions/", None, [401, 200, 200, 403, 403, 200, 200]),
    ("post", "/api/subscriptions/", "new", [401, 201, 201, 403, 403, 201, 201]),
    ("get", SUB, None, OWN),
    ("patch", SUB, {"description": "changed"}, OWN),
    ("put", SUB, "new", OWN),
    ("delete", SUB, None, [401, 204, 404, 403, 403, 204, 204]),
    ("post", SUB + "rotate-secret/", {}, OWN),
    ("post", SUB + "test/", None, [401, 202, 404, 403, 403, 202, 202]),
    (
        "post",
        SUB + "replay/",
        {"since": "2026-01-01T00:00:00Z"},
        [401, 202, 404, 403, 403, 202, 202],
    ),
    # The catalog is the host's, not a tenant's: readable by every logged-in user.
    ("get", "/api/event-types/", None, [401, 200, 200, 200, 200, 200, 200]),
    ("post", "/api/event-types/", {"name": "user.signed_up"}, [401, 403, 403, 403, 403, 201, 201]),
    ("get", "/api/event-types/order.created/", None, [401, 200, 200, 200, 200, 200, 200]),
    (
        "patch",
        "/api/event-types/order.created/",
        {"description": "x"},
        DENIED,
    ),
    ("put", "/api/event-types/order.created/", {"name": "order.created"}, DENIED),
    ("delete", "/api/event-types/order.created/", None, [401, 403, 403, 403, 403, 204, 204]),
    ("get", "/api/events/", None, [401, 200, 200, 403, 403, 200, 200]),
    ("get", "/api/events/{event}/", None, OWN),
    (
        "post",
        "/api/events/",
        {"type": "order.created", "data": {}},
        [401, 403, 403, 403, 403, 202, 202],
    ),
    ("get", "/api/deliveries/", None, [401, 200, 200, 403, 403, 200, 200]),
    ("get", "/api/deliveries/{delivery}/", None, OWN),
    ("post", "/api/deliveries/{delivery}/retry/", None, [401, 202, 404, 403, 403, 202, 202]),
    ("get", "/api/tenants/", None, DENIED),
    ("get", "/api/tenants/tenant-a/", None, DENIED),
    ("post", "/api/tenants/tenant-a/portal-link/", None, DENIED),
    ("post", "/api/tenants/tenant-a/portal-sessions/revoke/", None, DENIED),
]
CASES = [
    pytest.param(method, path, body, actor, expected[i], id=f"{method}-{path}-{actor}")
    for method, path, body, expected in MATRIX
    for i, actor in enumerate(ACTORS)
]


@pytest.mark.parametrize(("method", "path", "body", "actor", "expected"), CASES)
def test_authorization_matrix(users, catalog, broker, method, path, body, actor, expected):
    sub = make_subscription(
        "https://hooks.example.com/mine", ["order.created"], owner=users["owner"], tenant=A
    )
    delivery = make_delivery(sub, DeliveryStatus.FAILED)
    client = client_for(None if actor == "anonymous" else users[actor])
    data = new_body() if body == "new" else body
    url = path.format(id=sub.pk, event=delivery.event_id, delivery=delivery.pk)

    response = getattr(client, method)(url, data, format="json")

    assert response.status_code == expected, response.content
    if expected == 404:  # nothing of the other tenant's subscription changed or leaked
        sub.refresh_from_db()
        assert sub.description == "" and sub.url.endswith("/mine")
        assert str(sub.pk) not in response.content.decode()
        delivery.refresh_from_db()
        assert delivery.status == DeliveryStatus.FAILED


def test_a_view_permission_reads_every_tenant_but_changes_only_its_own(django_user_model, catalog):
    # Model permissions work action by action, as in the admin: `view_subscription` shows
    # tenant A's endpoint to a tenant B user, `change_subscription` is still needed to change it.
    sub = make_subscription("https://hooks.example.com/mine", ["order.created"], tenant=A)
    viewer = make_tenant_user("viewer", B)
    viewer.user_permissions.add(Permission.objects.get(codename="view_subscription"))
    client = client_for(django_user_model.objects.get(pk=viewer.pk))

    assert client.get(f"/api/subscriptions/{sub.pk}/").status_code == 200
    response = client.patch(f"/api/subscriptions/{sub.pk}/", {"description": "x"}, format="json")
    assert response.status_code == 403
    assert client.post(f"/api/subscriptions/{sub.pk}/rotate-secret/", {}).status_code == 403
    sub.refresh_from_db()
    assert sub.description == ""


def test_lists_show_the_tenants_subscriptions_and_permission_holders_see_all(users):
    mine = make_subscription("https://hooks.example.com/a", owner=users["owner"], tenant=A)
    colleague = make_tenant_user("colleague", A)
    ours = make_subscription("https://hooks.example.com/c", owner=colleague, tenant=A)
    theirs = make_subscription("https://hooks.example.com/b", owner=users["other"], tenant=B)

    def ids(actor):
        body = client_for(users[actor]).get("/api/subscriptions/").json()
        return {row["id"] for row in body["results"]}

    # A tenant's users share its subscriptions, whoever created them.
    assert ids("owner") == {str(mine.pk), str(ours.pk)}
    assert ids("other") == {str(theirs.pk)}
    assert ids("operator") == ids("superuser") == {str(mine.pk), str(ours.pk), str(theirs.pk)}


def test_deliveries_of_other_tenants_are_invisible(
    users, catalog, django_capture_on_commit_callbacks
):
    from deliveries.services import publish

    make_subscription("https://hooks.example.com/a", owner=users["owner"], tenant=A)
    with django_capture_on_commit_callbacks(execute=True):
        publish("order.created", {}, tenant=A)
    assert len(client_for(users["owner"]).get("/api/deliveries/").json()["results"]) == 1
    assert len(client_for(users["other"]).get("/api/deliveries/").json()["results"]) == 0
    assert client_for(users["staff"]).get("/api/deliveries/").status_code == 403
    assert len(client_for(users["operator"]).get("/api/deliveries/").json()["results"]) == 1


def test_token_session_and_basic_authentication_work(users):
    token = Token.objects.create(user=users["owner"])
    make_subscription("https://hooks.example.com/a", owner=users["owner"], tenant=A)

    by_token = APIClient(HTTP_AUTHORIZATION=f"Token {token.key}")
    basic = base64.b64encode(b"owner:pw-owner").decode()
    by_basic = APIClient(HTTP_AUTHORIZATION=f"Basic {basic}")
    by_session = APIClient()
    assert by_session.login(username="owner", password="pw-owner")
    wrong = APIClient(HTTP_AUTHORIZATION="Token not-a-token")

    for client in (by_token, by_basic, by_session):
        assert client.get("/api/subscriptions/").json()["count"] == 1
    assert wrong.get("/api/subscriptions/").status_code == 401


def test_session_authentication_still_needs_csrf_for_writes(users, catalog):
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(username="owner", password="pw-owner")
    response = client.post("/api/subscriptions/", new_body(), format="json")
    assert response.status_code == 403
    assert Subscription.objects.count() == 0


def test_publishing_needs_the_add_event_permission(users, catalog):
    client = client_for(users["other"])
    assert (
        client.post(
            "/api/events/", {"type": "order.created", "data": {}}, format="json"
        ).status_code
        == 403
    )
    users["other"].user_permissions.add(Permission.objects.get(codename="add_event"))
    client = client_for(type(users["other"]).objects.get(pk=users["other"].pk))
    response = client.post("/api/events/", {"type": "order.created", "data": {}}, format="json")
    assert response.status_code == 202
    assert Event.objects.filter(pk=response.json()["id"]).exists()


# --- Secrets --------------------------------------------------------------------------------


def test_secret_is_returned_on_create_only(owner_client, catalog):
    created = owner_client.post("/api/subscriptions/", new_body(), format="json")
    assert created.status_code == 201
    secret = created.json()["secret"]
    sub = Subscription.objects.get(pk=created.json()["id"])
    assert sub.secret == secret and secret.startswith("whsec_")

    for response in (
        owner_client.get("/api/subscriptions/"),
        owner_client.get(f"/api/subscriptions/{sub.pk}/"),
        owner_client.patch(f"/api/subscriptions/{sub.pk}/", {"description": "x"}, format="json"),
    ):
        assert response.status_code == 200
        assert "secret" not in response.content.decode()
        assert secret not in response.content.decode()


def test_client_supplied_secret_is_validated(owner_client, catalog):
    good = generate_secret(48)
    response = owner_client.post("/api/subscriptions/", new_body(secret=good), format="json")
    assert response.status_code == 201 and response.json()["secret"] == good
    for bad in ("plain", "whsec_!!!", "whsec_" + base64.b64encode(b"short").decode()):
        response = owner_client.post("/api/subscriptions/", new_body(secret=bad), format="json")
        assert response.status_code == 400 and "secret" in response.json()
    assert Subscription.objects.count() == 1


def test_secret_cannot_be_changed_by_patch(owner_client, catalog, users):
    sub = make_subscription("https://hooks.example.com/a", owner=users["owner"], tenant=A)
    response = owner_client.patch(
        f"/api/subscriptions/{sub.pk}/", {"secret": generate_secret()}, format="json"
    )
    assert response.status_code == 400 and "rotate-secret" in response.json()["secret"][0]
    assert Subscription.objects.get(pk=sub.pk).secret == sub.secret


def test_rotate_secret_answers_the_new_secret_once(owner_client, users):
    sub = make_subscription("https://hooks.example.com/a", owner=users["owner"], tenant=A)
    response = owner_client.post(f"/api/subscriptions/{sub.pk}/rotate-secret/")
    assert response.status_code == 200
    body = response.json()
    fresh = Subscription.objects.get(pk=sub.pk)
    assert body["secret"] == fresh.secret != sub.secret
    assert fresh.previous_secret == sub.secret
    assert body["previous_secret_expires_at"]


def test_rotate_secret_refuses_a_bad_or_unchanged_secret(owner_client, users):
    sub = make_subscription("https://hooks.example.com/a", owner=users["owner"], tenant=A)
    url = f"/api/subscriptions/{sub.pk}/rotate-secret/"
    assert owner_client.post(url, {"secret": "nope"}, format="json").status_code == 400
    same = owner_client.post(url, {"secret": sub.secret}, format="json")
    assert same.status_code == 400 and "differ" in same.json()["secret"][0]
    assert Subscription.objects.get(pk=sub.pk).previous_secret == ""


# --- Validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("url", "ftp://hooks.example.com/in"),
        ("url", "/relative/path"),
        ("url", "https://user:pw@hooks.example.com/in"),
        ("url", "https://unknown.invalid/in"),
        ("url", "https://hooks.example.com/" + "a" * 2100),
        ("event_types", []),
        ("event_types", "order.created"),
        ("event_types", ["order.unknown"]),
        ("event_types", ["order.*.x"]),
        ("event_types", ["order created"]),
        ("event_types", ["order.created"] * 50 + [f"t{i}.*" for i in range(60)]),
        ("headers", {"X Bad": "1"}),
        ("headers", {"X-Bad:": "1"}),
        ("headers", {"webhook-signature": "v1,forged"}),
        ("headers", {"Webhook-Id": "1"}),
        ("headers", {"Content-Type": "text/plain"}),
        ("headers", {"host": "internal"}),
        ("headers", {"User-Agent": "me"}),
        ("headers", {"Transfer-Encoding": "chunked"}),
        ("headers", {"Proxy-Authorization": "x"}),
        ("headers", {"X-Injected": "a\r\nX-Evil: 1"}),
        ("headers", {"X-Newline": "a\nb"}),
        ("headers", {"X-Spaces": " padded "}),
        ("headers", {"X-Unicode": "caf\u00e9"}),
        ("headers", {"X-A": "1", "x-a": "2"}),
        ("headers", {f"X-H{i}": "v" for i in range(21)}),
        ("headers", {"X-" + "n" * 300: "v"}),
        ("headers", {"X-Long": "v" * 5000}),
        ("headers", ["not", "an", "object"]),
        ("rate_limit", 0),
        ("rate_limit", -1),
        ("rate_limit", 10_001),
        ("payload_format", "xml"),
        ("description", "d" * 501),
    ],
)
def test_invalid_subscription_is_refused_with_a_field_error(owner_client, catalog, field, value):
    response = owner_client.post("/api/subscriptions/", new_body(**{field: value}), format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert Subscription.objects.count() == 0


def test_https_is_required_unless_http_is_allowed(owner_client, catalog, settings):
    with override_settings(WEBHOOKS={**settings.WEBHOOKS, "ALLOW_HTTP": False}):
        response = owner_client.post(
            "/api/subscriptions/", new_body(url="http://hooks.example.com/in"), format="json"
        )
    assert response.status_code == 400 and "https" in response.json()["url"][0]
    allowed = owner_client.post(
        "/api/subscriptions/", new_body(url="http://hooks.example.com/in"), format="json"
    )
    assert allowed.status_code == 201


def test_valid_subscription_is_stored_as_given(owner_client, catalog, users):
    body = new_body(
        url="https://other.example.net/hook",
        event_types=["order.*", "invoice.sent", "*", "order.*"],
        headers={"Authorization": "Bearer abc", "X-Tenant": "42", "X-Empty": ""},
        rate_limit=10,
        payload_format="cloudevents",
        description="orders",
    )
    response = owner_client.post("/api/subscriptions/", body, format="json")
    assert response.status_code == 201, response.content
    sub = Subscription.objects.get(pk=response.json()["id"])
    assert sub.owner == users["owner"]
    assert sub.event_types == ["order.*", "invoice.sent", "*"]
    assert sub.headers == {"Authorization": "Bearer abc", "X-Tenant": "42", "X-Empty": ""}
    assert (sub.max_in_flight, sub.payload_format, sub.description) == (10, "cloudevents", "orders")


def test_event_types_removed_from_the_catalog_may_stay_on_update(owner_client, catalog, users):
    sub = make_subscription(
        "https://hooks.example.com/a", ["order.created"], owner=users["owner"], tenant=A
    )
    EventType.objects.filter(name="order.created").delete()
    url = f"/api/subscriptions/{sub.pk}/"
    kept = owner_client.patch(url, {"event_types": ["order.created", "order.paid"]}, format="json")
    assert kept.status_code == 200
    added = owner_client.patch(url, {"event_types": ["order.gone"]}, format="json")
    assert added.status_code == 400 and "order.gone" in added.json()["event_types"][0]


def test_changing_is_active_goes_through_the_services(
    owner_client, users, django_capture_on_commit_callbacks
):
    sub = make_subscription("https://hooks.example.com/a", owner=users["owner"], tenant=A)
    seen = []

    def on_disabled(sender, subscription, reason, **kwargs):
        seen.append(("disabled", subscription.pk, reason))

    def on_enabled(sender, subscription, **kwargs):
        seen.append(("enabled", subscription.pk))

    signals.subscription_disabled.connect(on_disabled, dispatch_uid="t-disabled")
    signals.subscription_enabled.connect(on_enabled, dispatch_uid="t-enabled")
    try:
        url = f"/api/subscriptions/{sub.pk}/"
        with django_capture_on_commit_callbacks(execute=True):
            off = owner_client.patch(url, {"is_active": False}, format="json")
        assert off.status_code == 200
        assert off.json()["is_active"] is False and off.json()["disabled_reason"]
        with django_capture_on_commit_callbacks(execute=True):
            on = owner_client.patch(url, {"is_active": True}, format="json")
        assert on.json()["is_active"] is True and on.json()["disabled_reason"] == ""
    finally:
        signals.subscription_disabled.disconnect(dispatch_uid="t-disabled")
        signals.subscription_enabled.disconnect(dispatch_uid="t-enabled")
    assert seen == [("disabled", sub.pk, "Disabled through the API."), ("enabled", sub.pk)]


def test_test_event_on_a_disabled_subscription_is_a_conflict(owner_client, users):
    sub = make_subscription(
        "https://hooks.example.com/a", owner=users["owner"], tenant=A, is_active=False
    )
    response = owner_client.post(f"/api/subscriptions/{sub.pk}/test/")
    assert response.status_code == 409
    assert Event.objects.count() == 0


# --- Event type catalog and publishing --------------------------------------------------------


@pytest.fixture
def staff_api(users):
    # Changing the catalog and publishing need model permissions, not `is_staff`.
    return client_for(users["operator"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "order created"}, "name"),
        ({"name": "x.y", "description": "d" * 5001}, "description"),
        ({"name": "order.*"}, "name"),
        ({"name": "x.y", "schema": {"type": "nope"}}, "schema"),
        ({"name": "x.y", "schema": {"properties": {"a": {"minimum": "zero"}}}}, "schema"),
        ({"name": "x.y", "schema": {"pattern": "("}}, "schema"),
        ({"name": "x.y", "schema": [1, 2]}, "schema"),
        ({"name": "x.y", "schema": {"$ref": "https://example.com/schema.json"}}, "schema"),
        ({"name": "x.y", "schema": {"$ref": "#/$defs/missing"}}, "schema"),
    ],
)
def test_invalid_event_type_is_refused(staff_api, body, field):
    response = staff_api.post("/api/event-types/", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not EventType.objects.exists()


def test_event_type_with_schema_validates_published_data(staff_api):
    schema = {
        "type": "object",
        "properties": {"id": {"$ref": "#/$defs/id"}},
        "required": ["id"],
        "$defs": {"id": {"type": "integer"}},
    }
    created = staff_api.post(
        "/api/event-types/", {"name": "order.created", "schema": schema}, format="json"
    )
    assert created.status_code == 201, created.content

    bad = staff_api.post(
        "/api/events/", {"type": "order.created", "data": {"id": "seven"}}, format="json"
    )
    assert bad.status_code == 400
    assert re.search(
        r"schema of 'order.created' at id: 'seven' is not of type", bad.json()["data"][0]
    )
    missing = staff_api.post("/api/events/", {"type": "order.created", "data": {}}, format="json")
    assert missing.status_code == 400 and "'id' is a required property" in missing.json()["data"][0]
    good = staff_api.post(
        "/api/events/", {"type": "order.created", "data": {"id": 7}}, format="json"
    )
    assert good.status_code == 202
    assert Event.objects.count() == 1


def test_payload_over_the_limit_is_413(staff_api, settings):
    with override_settings(WEBHOOKS={**settings.WEBHOOKS, "MAX_PAYLOAD_BYTES": 100}):
        response = staff_api.post(
            "/api/events/", {"type": "order.created", "data": {"x": "y" * 200}}, format="json"
        )
    assert response.status_code == 413
    assert "limit is 100 bytes" in response.json()["data"][0]
    assert not Event.objects.exists()


# --- OpenAPI --------------------------------------------------------------------------------


def test_schema_is_served_as_yaml_and_json(client):
    yaml = client.get("/api/schema/")
    assert yaml.status_code == 200 and yaml.content.startswith(b"openapi: 3")
    assert client.get("/api/schema/?format=json").json()["openapi"].startswith("3.")


def test_schema_describes_the_custom_actions(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    paths, components = schema["paths"], schema["components"]["schemas"]
    rotate = paths["/api/subscriptions/{id}/rotate-secret/"]["post"]
    request = rotate["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert components[request.rsplit("/", 1)[1]]["properties"]["secret"]["writeOnly"] is True
    assert "secret" not in components["Subscription"]["properties"]
    assert rotate["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/RotatedSecret"
    )
    test = paths["/api/subscriptions/{id}/test/"]["post"]
    assert set(test["responses"]) >= {"202", "404", "409"}
    created = paths["/api/subscriptions/"]["post"]["responses"]["201"]
    assert created["content"]["application/json"]["schema"]["$ref"].endswith("/SubscriptionCreate")
    assert "413" not in paths["/api/subscriptions/"]["post"]["responses"]
    # The portal's own include (webhooks_portal.api_urls), where the host mounted it.
    link = paths["/api/tenants/{key}/portal-link/"]["post"]
    assert link["operationId"] == "tenants_portal_link_create" and "requestBody" not in link
    assert set(link["responses"]) >= {"200", "400", "403"}
    shape = link["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert set(components[shape.rsplit("/", 1)[1]]["properties"]) == {"url", "expires_at"}


def test_docs_page_works_offline(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    references = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)""", html)
    assert references, "the page loads its assets from somewhere"
    external = [ref for ref in references if re.match(r"^(https?:)?//", ref)]
    assert external == []
    # Whole words only: the page embeds a random CSRF token, which now and then spells "cdn".
    assert not re.search(
        r"(?<![A-Za-z0-9])(cdn|unpkg|jsdelivr|cloudflare)(?![A-Za-z0-9])", html, re.IGNORECASE
    )
    for ref in references:
        if ref.startswith("/static/"):
            assert client.get(ref).status_code == 200, ref
