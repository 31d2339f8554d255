"""In-flight limits mean what they say: 0 is refused at every door (it would hold deliveries
for good, silently), `max_in_flight` is the API's name and `rate_limit` its alias."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from deliveries.models import Delivery
from deliveries.services.attempts import SHOW_WAIT_AFTER
from subscriptions.models import EventType, Subscription, Tenant
from tests.factories import make_subscription, make_tenant_user
from tests.ops_helpers import make_delivery
from tests.portal_helpers import open_portal, portal_url
from tests.stubdns import resolving

pytestmark = pytest.mark.django_db

URL = "https://hooks.example.com/in"


@pytest.fixture
def client():
    EventType.objects.create(name="order.created")
    api = APIClient()
    api.force_authenticate(make_tenant_user("owner", "org_a"))
    with resolving({"hooks.example.com": ["93.184.215.14"]}):
        yield api


def create(client: APIClient, **fields) -> object:
    body = {"url": URL, "event_types": ["order.created"], **fields}
    return client.post("/api/subscriptions/", body, format="json")


@pytest.mark.parametrize("name", ["max_in_flight", "rate_limit"])
def test_an_in_flight_limit_of_0_is_refused_by_the_api_naming_the_field(client, name):
    response = create(client, **{name: 0})

    assert response.status_code == 400, response.content
    message = response.json()[name][0]
    assert "disable the endpoint" in message
    assert Subscription.objects.count() == 0


def test_max_in_flight_is_stored_and_shown_under_both_names(client):
    response = create(client, max_in_flight=3)

    assert response.status_code == 201, response.content
    assert (response.json()["max_in_flight"], response.json()["rate_limit"]) == (3, 3)
    assert Subscription.objects.get().max_in_flight == 3


def test_rate_limit_still_sets_the_limit_for_one_release(client):
    sub_id = create(client, rate_limit=4).json()["id"]
    patched = client.patch(f"/api/subscriptions/{sub_id}/", {"rate_limit": 6}, format="json")

    assert patched.status_code == 200 and patched.json()["max_in_flight"] == 6
    cleared = client.patch(f"/api/subscriptions/{sub_id}/", {"max_in_flight": None}, format="json")
    assert cleared.json()["max_in_flight"] is None
    assert Subscription.objects.get().max_in_flight is None


def test_the_two_names_at_once_must_agree(client):
    response = create(client, max_in_flight=2, rate_limit=5)

    assert response.status_code == 400 and "rate_limit" in response.json()
    assert create(client, max_in_flight=2, rate_limit=2).status_code == 201


def test_the_model_refuses_a_limit_of_0_on_full_clean():
    tenant = Tenant.objects.for_key("org_a")
    tenant.max_in_flight = 0
    with pytest.raises(ValidationError) as refused:
        tenant.full_clean()
    assert "max_in_flight" in refused.value.message_dict

    subscription = make_subscription("https://hooks.example.com/in", max_in_flight=0)
    with pytest.raises(ValidationError) as refused:
        subscription.full_clean()
    assert "max_in_flight" in refused.value.message_dict


def test_the_admin_refuses_a_tenant_limit_of_0_and_says_how_to_pause(admin_client):
    Tenant.objects.for_key("org_a")
    url = reverse("admin:webhook_subscriptions_tenant_change", args=["org_a"])
    form = {"name": "A", "contact_email": "", "max_subscriptions": "", "max_in_flight": "0"}

    page = admin_client.post(url, form)

    assert page.status_code == 200  # the form again, with the error
    assert "disable the endpoint" in page.content.decode()
    assert Tenant.objects.get(pk="org_a").max_in_flight is None
    assert admin_client.post(url, {**form, "max_in_flight": "2"}).status_code == 302
    assert Tenant.objects.get(pk="org_a").max_in_flight == 2


def test_the_help_text_says_how_to_pause():
    for field in (
        Tenant._meta.get_field("max_in_flight"),
        Subscription._meta.get_field("max_in_flight"),
    ):
        assert "disable the endpoint" in str(field.help_text)


@pytest.mark.django_db(transaction=True)
def test_the_migration_turns_a_stored_0_into_the_default():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    def migrate(targets):
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(targets)
        return executor.loader.project_state(targets).apps

    app = "webhook_subscriptions"
    try:
        old = migrate([(app, "0009_exact_text_validators")])
        old.get_model(app, "Tenant").objects.create(key="org_z", name="z", max_in_flight=0)
        new = migrate([(app, "0010_in_flight_limits_at_least_one")])
        # The model as of that migration: later ones add columns (max_rate, 0012).
        assert new.get_model(app, "Tenant").objects.get(pk="org_z").max_in_flight is None
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


# --- A delivery held by a cap says so -------------------------------------------------------


@pytest.fixture
def held(broker, settings):
    """A due delivery of org_a whose endpoint (max_in_flight 1) is busy with another request:
    its attempt is refused by the cap, as a worker's would be."""
    from deliveries.services import attempt_delivery, inflight

    settings.WEBHOOKS = {**settings.WEBHOOKS, "METRICS_ENABLED": True, "METRICS_TOKEN": "tkn"}
    sub = make_subscription("http://127.0.0.1:9/busy", tenant="org_a", max_in_flight=1)
    delivery = make_delivery(sub, "pending", next_attempt_at=timezone.now())
    busy = inflight.acquire(sub)
    assert busy is not None and busy.client is not None  # the one slot, taken
    assert attempt_delivery(delivery.pk, 1).action == "defer"
    # A refusal or two pass unrecorded (a burst would cost a write each); a wait that lasts is
    # written: the message comes back with its count of refusals.
    assert Delivery.objects.get(pk=delivery.pk).waiting_for == ""
    outcome = attempt_delivery(delivery.pk, 1, deferrals=SHOW_WAIT_AFTER)
    assert outcome.action == "defer"
    yield sub, Delivery.objects.select_related("subscription").get(pk=delivery.pk), busy
    busy.release()


def test_a_delivery_held_by_the_endpoint_cap_says_why_everywhere(held, admin_client, client):
    from deliveries.services import health

    _sub, delivery, _busy = held
    assert delivery.waiting_for == "endpoint_cap" and delivery.attempts == 0

    api = APIClient()
    api.force_authenticate(make_tenant_user("reader", "org_a"))
    assert api.get(f"/api/deliveries/{delivery.pk}/").json()["waiting_for"] == "endpoint_cap"
    listing = admin_client.get(reverse("admin:deliveries_delivery_changelist")).content.decode()
    assert "Endpoint at its in-flight cap" in listing
    open_portal(client, "org_a")
    page = client.get(portal_url("delivery", delivery.pk)).content.decode()
    assert 'id="waiting-for"' in page and "Endpoint at its in-flight cap" in page
    assert health.backlog(with_queues=False).held == {"endpoint_cap": 1}
    metrics = client.get("/api/metrics/", HTTP_AUTHORIZATION="Bearer tkn").content.decode()
    assert 'webhooks_backlog_held{reason="endpoint_cap"} 1.0' in metrics
    dashboard = admin_client.get(reverse("admin:deliveries_dashboard")).content.decode()
    assert "Held by an in-flight cap" in dashboard


def test_the_reason_ends_when_the_attempt_starts(held, receiver):
    from deliveries.services import attempt_delivery

    sub, delivery, busy = held
    Subscription.objects.filter(pk=sub.pk).update(url=receiver.url("/busy"))
    busy.release()

    assert attempt_delivery(delivery.pk, 1, deferrals=1).action == "done"

    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and delivery.waiting_for == ""
    assert not Delivery.objects.held().exists()


def test_a_delivery_held_by_its_tenants_cap_names_the_tenant(broker):
    from deliveries.services import attempt_delivery, inflight

    Tenant.objects.filter(pk=Tenant.objects.for_key("org_a").pk).update(max_in_flight=1)
    inflight.forget_tenant_limits()
    other = make_subscription("http://127.0.0.1:9/other", tenant="org_a")
    sub = make_subscription("http://127.0.0.1:9/mine", tenant="org_a")
    delivery = make_delivery(sub, "pending", next_attempt_at=timezone.now())
    busy = inflight.acquire(other)
    try:
        assert attempt_delivery(delivery.pk, 1, deferrals=SHOW_WAIT_AFTER).action == "defer"
    finally:
        busy.release()
        inflight.forget_tenant_limits()

    delivery.refresh_from_db()
    assert delivery.waiting_for == "tenant_cap"
