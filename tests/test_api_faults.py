"""The API when the web process loses its database connection.

The fault is caused for real: on PostgreSQL another connection terminates this process's backend
(`pg_terminate_backend`), on SQLite the driver's connection under Django is closed. Once the
event has committed, the publisher gets its 202 (the sweep fans the event out later); before the
commit, a JSON 500 and nothing stored. Every API error is JSON, with or without the host's DRF
settings.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.db import connection, transaction
from django.db.models.signals import post_save
from django.test import Client, override_settings
from django.urls import get_resolver
from rest_framework.test import APIClient, APIRequestFactory

from deliveries.models import Delivery, DeliveryStatus, Event
from deliveries.services import sweep
from tests.factories import make_subscription

pytestmark = pytest.mark.django_db(transaction=True)


def cut_connection() -> None:
    """Make this process's database connection unusable, as a failover or a network cut does."""
    if connection.vendor == "postgresql":
        import psycopg

        db = connection.settings_dict
        pid = connection.connection.info.backend_pid
        with psycopg.connect(
            dbname=db["NAME"],
            user=db["USER"],
            password=db["PASSWORD"],
            host=db["HOST"],
            port=db["PORT"] or 5432,
            autocommit=True,
        ) as other:
            # The second argument waits (ms) until the backend is gone.
            row = other.execute("SELECT pg_terminate_backend(%s, 5000)", [pid]).fetchone()
        assert row == (True,)
    else:
        connection.connection.close()


@contextmanager
def connection_lost(*, after_commit: bool) -> Iterator[None]:
    """Cut the connection when the next event is saved: right after its transaction commits,
    or inside it (so the commit fails)."""

    def on_save(sender: type, **kwargs: object) -> None:
        if after_commit:
            transaction.on_commit(cut_connection)
        else:
            cut_connection()

    post_save.connect(on_save, sender=Event, dispatch_uid="test-connection-lost")
    try:
        yield
    finally:
        post_save.disconnect(sender=Event, dispatch_uid="test-connection-lost")
        # The test client does not close connections between requests: start afresh.
        connection.close()


@pytest.fixture
def publisher(django_user_model) -> APIClient:
    # A superuser: its permission checks need no query once the connection is gone.
    user = django_user_model.objects.create_superuser("publisher", "p@example.com", "pw")
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(user)
    return client


def test_connection_lost_after_commit_still_answers_202_and_the_sweep_fans_out(
    publisher, broker, settings
):
    sub = make_subscription("http://127.0.0.1:9/hook", ["order.*"])

    with connection_lost(after_commit=True):
        response = publisher.post(
            "/api/events/",
            {"type": "order.created", "data": {"id": 1}},
            format="json",
            HTTP_IDEMPOTENCY_KEY="order-1-created",
        )

    assert response.status_code == 202, response.content
    body = response.json()
    assert body["duplicate"] is False
    assert body["deliveries"] is None  # unknown: the fan-out could not run
    event = Event.objects.get(pk=body["id"])
    assert event.fanned_out_at is None
    # The publisher resends with its key (it could not know the outcome): nothing new.
    again = publisher.post(
        "/api/events/",
        {"type": "order.created", "data": {"id": 1}},
        format="json",
        HTTP_IDEMPOTENCY_KEY="order-1-created",
    )
    assert again.status_code == 202 and again.json()["id"] == body["id"]
    assert again.json()["duplicate"] is True
    # The sweep fans the stored event out.
    settings.WEBHOOKS = {**settings.WEBHOOKS, "SWEEP_GRACE": 0}
    assert sweep().fanned_out == 1
    delivery = Delivery.objects.get(event=event)
    assert (delivery.subscription_id, delivery.status) == (sub.pk, DeliveryStatus.PENDING)


def test_connection_lost_before_commit_is_a_json_500_and_nothing_is_stored(publisher):
    with connection_lost(after_commit=False):
        response = publisher.post(
            "/api/events/", {"type": "order.created", "data": {"id": 1}}, format="json"
        )

    assert response.status_code == 500
    assert response["content-type"] == "application/json"
    assert response.json() == {"detail": "Internal server error."}
    assert Event.objects.count() == 0


@pytest.mark.parametrize(
    "rest_framework",
    [None, {"DEFAULT_AUTHENTICATION_CLASSES": []}],
    ids=["reference", "host-defaults"],
)
def test_an_unexpected_error_in_any_view_is_a_json_500(publisher, rest_framework):
    overrides = {"REST_FRAMEWORK": rest_framework} if rest_framework is not None else {}
    with override_settings(**overrides), connection_lost(after_commit=False):
        # A read this time: the connection is cut by the first event saved...
        Event.objects.create(type="order.created", data={})
        response = publisher.get("/api/events/")

    assert response.status_code == 500
    assert response["content-type"] == "application/json"
    assert response.json() == {"detail": "Internal server error."}


def test_a_host_may_make_the_handler_its_own_global_one(publisher):
    rest = {"EXCEPTION_HANDLER": "webhooks_core.api.exception_handler"}
    with override_settings(REST_FRAMEWORK=rest), connection_lost(after_commit=False):
        Event.objects.create(type="order.created", data={})
        broken = publisher.get("/api/events/")
    with override_settings(REST_FRAMEWORK=rest):
        missing = publisher.get("/api/events/00000000-0000-0000-0000-000000000000/")

    assert broken.status_code == 500 and broken.json() == {"detail": "Internal server error."}
    assert missing.status_code == 404 and "detail" in missing.json()


class BreakingMiddleware:
    """Raises outside any DRF view, where only the project's handler500 can answer."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "HTTP_X_BREAK" in request.META:
            raise RuntimeError("broken middleware")
        return self.get_response(request)


@pytest.mark.parametrize(
    ("path", "accept", "json_expected"),
    [
        ("/api/events/", "*/*", True),
        ("/api/no-such-endpoint/", "application/json", True),
        ("/admin/", "text/html", False),
        ("/admin/", "application/json", True),
    ],
)
def test_errors_outside_the_views_are_json_under_the_api(settings, path, accept, json_expected):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, f"{__name__}.BreakingMiddleware"]
    client = Client(raise_request_exception=False)

    response = client.get(path, HTTP_X_BREAK="1", HTTP_ACCEPT=accept)

    assert response.status_code == 500
    if json_expected:
        assert response["content-type"] == "application/json"
        assert json.loads(response.content) == {"detail": "Internal server error."}
    else:
        assert response["content-type"].startswith("text/html")


def test_the_reference_project_uses_the_json_aware_handler500():
    from webhooks_core.api import server_error

    assert get_resolver().resolve_error_handler(500) is server_error
    request = APIRequestFactory().get("/api/events/")
    assert server_error(request).status_code == 500
