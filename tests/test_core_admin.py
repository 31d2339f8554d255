"""The admin shows subscriptions, events and the full delivery history."""

import pytest
from django.urls import reverse

from deliveries.models import Delivery, DeliveryAttempt, Event
from subscriptions.models import Subscription
from tests.factories import make_subscription

pytestmark = pytest.mark.django_db


@pytest.fixture
def history():
    sub = make_subscription("http://127.0.0.1:9/a", description="Orders endpoint")
    event = Event.objects.create(type="order.created", data={"id": 5})
    delivery = Delivery.objects.create(event=event, subscription=sub, status="failed", attempts=1)
    DeliveryAttempt.objects.create(
        delivery=delivery,
        number=1,
        started_at=event.created_at,
        duration_ms=12,
        request_headers={"webhook-id": str(event.id)},
        response_status=400,
        response_body="rejected by receiver",
        error_kind="http_status",
        error="HTTP 400",
    )
    return sub, event, delivery


def test_history_pages_render(admin_client, history):
    sub, event, delivery = history
    pages = [
        reverse("admin:webhook_subscriptions_subscription_changelist"),
        reverse("admin:webhook_subscriptions_subscription_change", args=[sub.pk]),
        reverse("admin:webhook_subscriptions_eventtype_changelist"),
        reverse("admin:deliveries_event_changelist"),
        reverse("admin:deliveries_event_change", args=[event.pk]),
        reverse("admin:deliveries_delivery_changelist"),
        reverse("admin:deliveries_delivery_change", args=[delivery.pk]),
    ]
    for url in pages:
        response = admin_client.get(url)
        assert response.status_code == 200, url
    detail = admin_client.get(reverse("admin:deliveries_delivery_change", args=[delivery.pk]))
    assert b"rejected by receiver" in detail.content
    assert str(event.id).encode() in detail.content
    assert sub.secret.encode() not in admin_client.get(pages[1]).content


def test_delivery_list_filters_and_search(admin_client, history):
    url = reverse("admin:deliveries_delivery_changelist")
    assert admin_client.get(url, {"status__exact": "failed"}).context["cl"].result_count == 1
    assert admin_client.get(url, {"status__exact": "succeeded"}).context["cl"].result_count == 0
    assert admin_client.get(url, {"event__type": "order.created"}).context["cl"].result_count == 1
    _, event, _ = history
    assert admin_client.get(url, {"q": str(event.id)}).context["cl"].result_count == 1


def test_creating_a_subscription_in_the_admin_shows_the_secret_once(admin_client):
    url = reverse("admin:webhook_subscriptions_subscription_add")
    response = admin_client.post(
        url,
        {
            "url": "http://127.0.0.1:9/hook",
            "description": "made in admin",
            "event_types": '["*"]',
            "is_active": "on",
            "payload_format": "standard",
            "headers": "",
        },
    )
    # In the answer to the POST itself (no redirect), never cached, and not parked in a
    # message or the session for the next page: the next page shows it no more.
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    sub = Subscription.objects.get(description="made in admin")
    assert sub.secret.encode() in response.content
    assert sub.secret not in repr(dict(admin_client.session))
    for page in (
        reverse("admin:webhook_subscriptions_subscription_changelist"),
        reverse("admin:webhook_subscriptions_subscription_change", args=[sub.pk]),
    ):
        assert sub.secret.encode() not in admin_client.get(page).content


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("url", "http://user:pw@127.0.0.1:9/hook", b"credentials"),
        ("event_types", '["no such type!"]', b"is not an event type name"),
        ("headers", "webhook-id: x", b"set by the webhook sender"),
    ],
)
def test_admin_form_applies_the_api_rules(admin_client, field, value, message):
    data = {
        "url": "http://127.0.0.1:9/hook",
        "description": "bad one",
        "event_types": '["*"]',
        "is_active": "on",
        "payload_format": "standard",
        "headers": "",
        field: value,
    }
    response = admin_client.post(reverse("admin:webhook_subscriptions_subscription_add"), data)
    assert response.status_code == 200  # the form again, with the error
    assert message in response.content
    assert not Subscription.objects.filter(description="bad one").exists()


def test_admin_form_refuses_private_destinations(admin_client, settings):
    settings.WEBHOOKS = {**settings.WEBHOOKS, "ALLOW_PRIVATE_NETWORKS": False}
    response = admin_client.post(
        reverse("admin:webhook_subscriptions_subscription_add"),
        {
            "url": "http://169.254.169.254/latest/meta-data/",
            "description": "metadata",
            "event_types": '["*"]',
            "payload_format": "standard",
            "headers": "",
        },
    )
    assert b"not a public address" in response.content
    assert not Subscription.objects.filter(description="metadata").exists()


def _changelist_queries(client, url: str) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_subscription_changelist_queries_do_not_grow_with_owned_rows(
    admin_client, django_user_model
):
    url = reverse("admin:webhook_subscriptions_subscription_changelist")

    def add_owned(n: int) -> None:
        for _ in range(n):
            count = django_user_model.objects.count()
            owner = django_user_model.objects.create_user(f"owner{count}", password="pw")
            make_subscription(f"http://127.0.0.1:9/{owner.username}", owner=owner)

    add_owned(1)
    _changelist_queries(admin_client, url)  # warm caches (content types, sessions)
    one_row = _changelist_queries(admin_client, url)
    add_owned(5)
    assert _changelist_queries(admin_client, url) == one_row
