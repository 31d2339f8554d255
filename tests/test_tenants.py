"""Tenants: the key, the default tenant, the resolver, and delivery scoped by tenant."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.test import RequestFactory, override_settings
from rest_framework.test import APIClient

from deliveries.models import Delivery, Event
from deliveries.services import IdempotencyConflict, PublishError, publish, publish_event
from subscriptions.models import Subscription, Tenant
from tests.factories import api_client, make_subscription, make_tenant_user, make_user
from webhooks_core.tenancy import resolve_tenant, tenant_from_groups

pytestmark = pytest.mark.django_db


def tenant_resolver_for_tests(request):
    """A resolver as a host writes it: the tenant is an attribute of the user."""
    return getattr(request.user, "org_key", None)


def bad_resolver(request):
    return "no spaces allowed"


# --- The tenant row -------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["org_42", "a", "x" * 255, "team.eu-west:7"])
def test_a_tenant_is_created_on_first_use(key):
    tenant = Tenant.objects.for_key(key)
    assert tenant.pk == key and tenant.name == key
    assert Tenant.objects.for_key(key) == tenant
    assert Tenant.objects.filter(pk=key).count() == 1


@pytest.mark.parametrize("key", ["", "x" * 256, "org 42", "org/42", "é", "a\x00b", "a\n", None, 42])
def test_a_malformed_tenant_key_is_refused(key):
    with pytest.raises(ValidationError):
        Tenant.objects.for_key(key)
    assert not Tenant.objects.exclude(pk="default").exists()


def test_objects_made_without_a_tenant_belong_to_the_default_tenant(settings):
    # Single-tenant code keeps working: nothing names a tenant.
    sub = Subscription.objects.create(url="http://127.0.0.1:9/", event_types=["*"])
    event = Event.objects.create(type="a.b", data={})
    assert sub.tenant_id == event.tenant_id == "default"
    settings.WEBHOOKS = {**settings.WEBHOOKS, "DEFAULT_TENANT": "main"}
    assert Subscription.objects.create(url="http://127.0.0.1:9/").tenant.key == "main"


def test_limits_fall_back_to_the_settings(settings):
    settings.WEBHOOKS = {
        **settings.WEBHOOKS,
        "TENANT_MAX_SUBSCRIPTIONS": 7,
        "TENANT_MAX_IN_FLIGHT": None,
    }
    tenant = Tenant.objects.for_key("org_1")
    assert (tenant.subscription_limit, tenant.in_flight_limit) == (7, None)
    tenant.max_subscriptions, tenant.max_in_flight = 3, 2
    assert (tenant.subscription_limit, tenant.in_flight_limit) == (3, 2)


# --- The resolver ---------------------------------------------------------------------------


def request_for(user):
    request = RequestFactory().get("/")
    request.user = user
    return request


def test_reference_resolver_reads_tenant_groups(django_user_model):
    assert tenant_from_groups(request_for(AnonymousUser())) is None
    # Logging in grants nothing: no group, no tenant (not the default one), even for staff and
    # superusers, who reach tenants through their model permissions instead.
    plain = django_user_model.objects.create_user("plain")
    assert tenant_from_groups(request_for(plain)) is None
    root = django_user_model.objects.create_superuser("root", password="pw")
    assert tenant_from_groups(request_for(root)) is None
    member = make_tenant_user("member", "org_42")
    assert tenant_from_groups(request_for(member)) == "org_42"
    # Two tenant groups: no guess, no tenant.
    both = make_tenant_user("both", "org_1")
    both.groups.add(*make_tenant_user("x", "org_2").groups.all())
    assert tenant_from_groups(request_for(both)) is None


def test_resolve_tenant_uses_the_configured_resolver_once_per_request(django_user_model):
    user = django_user_model.objects.create_user("u")
    user.org_key = "org_7"
    request = request_for(user)
    with override_settings(WEBHOOKS={"TENANT_RESOLVER": f"{__name__}.tenant_resolver_for_tests"}):
        assert resolve_tenant(request) == "org_7"
        user.org_key = "changed"
        assert resolve_tenant(request) == "org_7"


@pytest.mark.parametrize(
    ("path", "message"),
    [("nowhere.resolver", "cannot be imported"), (f"{__name__}.bad_resolver", "returned")],
)
def test_a_broken_resolver_is_an_error_naming_the_setting(django_user_model, path, message):
    request = request_for(django_user_model.objects.create_user("u"))
    with (
        override_settings(WEBHOOKS={"TENANT_RESOLVER": path}),
        pytest.raises(ImproperlyConfigured, match=message) as raised,
    ):
        resolve_tenant(request)
    assert "TENANT_RESOLVER" in str(raised.value)


def test_the_api_follows_the_configured_resolver(django_user_model):
    sub = make_subscription("http://127.0.0.1:9/a", tenant="org_7")
    user = django_user_model.objects.create_user("u")
    user.org_key = "org_7"
    client = APIClient()
    client.force_authenticate(user)
    with override_settings(WEBHOOKS={"TENANT_RESOLVER": f"{__name__}.tenant_resolver_for_tests"}):
        assert client.get(f"/api/subscriptions/{sub.pk}/").json()["tenant"] == "org_7"
        user.org_key = None  # no tenant and no permission: nothing at all
        assert client.get("/api/subscriptions/").status_code == 403


# --- Delivery scoped by tenant ----------------------------------------------------------------


def deliveries_of(event: Event) -> set:
    return set(Delivery.objects.filter(event=event).values_list("subscription_id", flat=True))


def test_publish_reaches_only_its_tenants_subscriptions(django_capture_on_commit_callbacks):
    # Two tenants with identical filters: each event reaches its own tenant only.
    a = make_subscription("http://127.0.0.1:9/a", ["order.*"], tenant="org_a")
    b = make_subscription("http://127.0.0.1:9/b", ["order.*"], tenant="org_b")
    with django_capture_on_commit_callbacks(execute=True):
        published_a = publish_event("order.created", {"id": 1}, tenant="org_a")
        published_b = publish_event(
            "order.created", {"id": 2}, tenant=Tenant.objects.get(pk="org_b")
        )
        for_default = publish("order.created", {"id": 3})
    for_a, for_b = published_a.event, published_b.event
    assert deliveries_of(for_a) == {a.pk}
    assert deliveries_of(for_b) == {b.pk}
    assert deliveries_of(for_default) == set()
    assert (for_a.tenant_id, for_b.tenant_id, for_default.tenant_id) == (
        "org_a",
        "org_b",
        "default",
    )
    assert published_a.deliveries == published_b.deliveries == 1


def test_broadcast_reaches_every_tenant(django_capture_on_commit_callbacks):
    a = make_subscription("http://127.0.0.1:9/a", ["order.*"], tenant="org_a")
    b = make_subscription("http://127.0.0.1:9/b", ["order.*"], tenant="org_b")
    make_subscription("http://127.0.0.1:9/c", ["invoice.*"], tenant="org_c")
    with django_capture_on_commit_callbacks(execute=True):
        publication = publish_event("order.created", {}, broadcast=True)
    event = publication.event
    assert deliveries_of(event) == {a.pk, b.pk}
    assert event.broadcast and publication.deliveries == 2


def test_publishing_to_a_malformed_tenant_is_refused():
    with pytest.raises(PublishError) as raised:
        publish("order.created", {}, tenant="org 42")
    assert raised.value.field == "tenant"
    assert not Event.objects.exists()


# --- Idempotency per tenant -------------------------------------------------------------------


def test_an_idempotency_key_is_per_tenant(django_capture_on_commit_callbacks):
    make_subscription("http://127.0.0.1:9/a", tenant="org_a")
    make_subscription("http://127.0.0.1:9/b", tenant="org_b")
    with django_capture_on_commit_callbacks(execute=True):
        first_a = publish("order.created", {"n": 1}, tenant="org_a", idempotency_key="k")
        first_b = publish("order.created", {"n": 1}, tenant="org_b", idempotency_key="k")
        again_a = publish_event("order.created", {"n": 1}, tenant="org_a", idempotency_key="k")
    assert first_a.pk != first_b.pk
    assert again_a.event.pk == first_a.pk and again_a.created is False
    assert Event.objects.count() == 2
    assert Delivery.objects.count() == 2


def test_an_idempotency_key_reused_for_another_body_conflicts():
    first = publish("order.created", {"n": 1, "m": 2}, idempotency_key="k")
    # Same body, keys in another order: the same request.
    assert publish("order.created", {"m": 2, "n": 1}, idempotency_key="k").pk == first.pk
    for event_type, data in (("order.created", {"n": 2}), ("order.paid", {"n": 1, "m": 2})):
        with pytest.raises(IdempotencyConflict):
            publish(event_type, data, idempotency_key="k")
    assert Event.objects.count() == 1


# --- Fan-out reads only the publishing tenant's rows --------------------------------------------


def many_subscriptions(tenants: int, each: int) -> None:
    Tenant.objects.bulk_create([Tenant(key=f"t{n}", name=f"t{n}") for n in range(tenants)])
    Subscription.objects.bulk_create(
        [
            Subscription(tenant_id=f"t{n}", url=f"http://127.0.0.1:9/{n}/{i}", event_types=["*"])
            for n in range(tenants)
            for i in range(each)
        ],
        batch_size=1000,
    )


def subscription_queries(captured) -> list[str]:
    return [q["sql"] for q in captured if "webhooks_subscription" in q["sql"]]


def test_fan_out_filters_subscriptions_by_tenant_in_sql(django_capture_on_commit_callbacks):
    many_subscriptions(tenants=20, each=5)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with (
        CaptureQueriesContext(connection) as captured,
        django_capture_on_commit_callbacks(execute=True),
    ):
        publication = publish_event("order.created", {}, tenant="t7")
    assert publication.deliveries == 5
    queries = subscription_queries(captured)
    assert queries, "the fan-out reads subscriptions"
    # Every read of subscriptions names the tenant (the statement as sent, parameters in).
    tenant_column = connection.ops.quote_name("tenant_id")
    for sql in queries:
        assert f"{tenant_column} = 't7'" in sql or f"{tenant_column} = %s" in sql, sql
    assert set(Delivery.objects.values_list("subscription__tenant_id", flat=True)) == {"t7"}


def test_the_tenant_index_drives_the_fan_out_query():
    # The plan, not only the WHERE clause: the database reaches the tenant's rows through the
    # (tenant, created_at) index instead of reading the table.
    from django.db import connection

    many_subscriptions(tenants=200, each=10)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    plan = Subscription.objects.for_tenant("t42").matching("order.created").explain()
    # Either index that starts with the tenant (the planner may take the narrower one).
    assert "webhooks_sub_tenant_idx" in plan or "webhooks_sub_tenant_state_idx" in plan, plan
    if connection.vendor == "postgresql":
        assert "Seq Scan" not in plan, plan
    else:
        assert "SCAN webhooks_subscription\n" not in plan + "\n", plan


# --- Through the API ----------------------------------------------------------------------------


@pytest.fixture
def backend():
    """The SaaS backend's token: publishes for every tenant (`deliveries.add_event`)."""
    return api_client(make_user("backend", "add_event"))


def test_the_api_publishes_to_the_named_tenant_only(backend, django_capture_on_commit_callbacks):
    a = make_subscription("http://127.0.0.1:9/a", ["order.*"], tenant="org_a")
    b = make_subscription("http://127.0.0.1:9/b", ["order.*"], tenant="org_b")
    answers = {}
    with django_capture_on_commit_callbacks(execute=True):
        for key in ("org_a", "org_b"):
            body = {"type": "order.created", "data": {"for": key}, "tenant": key}
            answers[key] = backend.post("/api/events/", body, format="json").json()
    assert answers["org_a"]["tenant"] == "org_a" and answers["org_a"]["deliveries"] == 1
    assert deliveries_of(Event.objects.get(pk=answers["org_a"]["id"])) == {a.pk}
    assert deliveries_of(Event.objects.get(pk=answers["org_b"]["id"])) == {b.pk}
    with django_capture_on_commit_callbacks(execute=True):
        everyone = backend.post(
            "/api/events/", {"type": "order.created", "data": {}, "broadcast": True}, format="json"
        ).json()
    assert everyone["deliveries"] == 2
    assert deliveries_of(Event.objects.get(pk=everyone["id"])) == {a.pk, b.pk}


def test_the_api_refuses_a_malformed_tenant(backend):
    response = backend.post(
        "/api/events/", {"type": "a.b", "data": {}, "tenant": "org 42"}, format="json"
    )
    assert response.status_code == 400 and "tenant" in response.json()
    assert not Event.objects.exists()


def test_idempotency_through_the_api(backend):
    def post(tenant, data):
        body = {"type": "a.b", "data": data, "tenant": tenant, "idempotency_key": "k"}
        return backend.post("/api/events/", body, format="json")

    first = post("org_a", {"n": 1})
    assert post("org_a", {"n": 1}).json()["id"] == first.json()["id"]
    other_tenant = post("org_b", {"n": 1})
    assert other_tenant.status_code == 202 and other_tenant.json()["id"] != first.json()["id"]
    conflict = post("org_a", {"n": 2})
    assert conflict.status_code == 422
    assert "another event type or data" in conflict.json()["idempotency_key"][0]
    assert Event.objects.count() == 2


def test_a_tenant_user_sees_a_broadcast_with_its_own_deliveries_only(
    django_capture_on_commit_callbacks,
):
    make_subscription("http://127.0.0.1:9/a", ["*"], tenant="org_a")
    mine = make_subscription("http://127.0.0.1:9/b", ["*"], tenant="org_b")
    with django_capture_on_commit_callbacks(execute=True):
        everyone = publish("notice.sent", {}, broadcast=True)
        publish("order.created", {}, tenant="org_a")
    client = api_client(make_tenant_user("bea", "org_b"))

    listed = client.get("/api/events/").json()["results"]
    assert [row["id"] for row in listed] == [str(everyone.pk)]
    detail = client.get(f"/api/events/{everyone.pk}/").json()
    assert detail["broadcast"] is True
    assert [d["subscription"] for d in detail["deliveries"]] == [str(mine.pk)]


def test_tenant_users_never_choose_the_tenant_of_a_subscription():
    client = api_client(make_tenant_user("ann", "org_a"))
    body = {"url": "http://127.0.0.1:9/x", "event_types": ["*"]}
    refused = client.post("/api/subscriptions/", {**body, "tenant": "org_b"}, format="json")
    assert refused.status_code == 400 and "tenant" in refused.json()
    created = client.post("/api/subscriptions/", body, format="json").json()
    assert created["tenant"] == "org_a"
    same = client.post("/api/subscriptions/", {**body, "tenant": "org_a"}, format="json")
    assert same.status_code == 201
    moved = client.patch(f"/api/subscriptions/{created['id']}/", {"tenant": "org_b"}, format="json")
    assert moved.status_code == 400
    assert not Subscription.objects.filter(tenant_id="org_b").exists()


def test_a_tenants_event_list_does_not_read_every_event():
    from django.db import connection

    Tenant.objects.bulk_create([Tenant(key=f"t{n}", name=f"t{n}") for n in range(100)])
    Event.objects.bulk_create(
        [Event(tenant_id=f"t{n % 100}", type="a.b", data={}) for n in range(3000)]
        + [Event(tenant_id="t0", type="notice.sent", data={}, broadcast=True)]
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    plan = Event.objects.for_tenant("t5").order_by("-created_at")[:50].explain()
    if connection.vendor == "postgresql":
        # The tenant's rows through an index on tenant, OR the broadcasts through theirs.
        assert "Seq Scan" not in plan and "webhooks_event_broadcast_idx" in plan, plan
    else:
        # SQLite walks the creation-time index newest first and stops at the page's end.
        assert "USING INDEX" in plan, plan


# --- Closed by default, and the one step that makes an operator ---------------------------


def test_migrate_gives_the_operators_group_every_permission_of_both_apps():
    from django.apps import apps
    from django.contrib.auth.models import Group

    from subscriptions.operators import OPERATORS_GROUP

    held = set(
        Group.objects.get(name=OPERATORS_GROUP).permissions.values_list(
            "content_type__app_label", "codename"
        )
    )
    expected = {
        (model._meta.app_label, f"{action}_{model._meta.model_name}")
        for label in ("webhook_subscriptions", "deliveries")
        for model in apps.get_app_config(label).get_models()
        for action in ("view", "add", "change", "delete")
    }
    assert expected <= held
    assert {label for label, _ in held} == {"webhook_subscriptions", "deliveries"}


def test_a_backend_token_in_the_operators_group_runs_a_single_tenant_project(django_user_model):
    from django.contrib.auth.models import Group
    from rest_framework.authtoken.models import Token

    from subscriptions.operators import OPERATORS_GROUP

    backend = django_user_model.objects.create_user("backend")
    token = Token.objects.create(user=backend)
    api = APIClient(HTTP_AUTHORIZATION=f"Token {token.key}")
    make_subscription("http://127.0.0.1:9/ops")  # the default tenant's
    body = {"url": "http://127.0.0.1:9/new", "event_types": ["*"]}
    # Logging in grants nothing ...
    assert api.get("/api/subscriptions/").status_code == 403
    assert api.post("/api/subscriptions/", body, format="json").status_code == 403

    # ... the group does (one step).
    backend.groups.add(Group.objects.get(name=OPERATORS_GROUP))

    assert api.get("/api/subscriptions/").json()["count"] == 1
    created = api.post("/api/subscriptions/", body, format="json")
    assert created.status_code == 201 and created.json()["tenant"] == "default"
    published = api.post("/api/events/", {"type": "a.b", "data": {}}, format="json")
    assert published.status_code == 202
    assert Event.objects.get(pk=published.json()["id"]).tenant_id == "default"
