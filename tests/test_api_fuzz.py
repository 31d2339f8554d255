"""Property-based run of the whole API against its own OpenAPI schema: no input gives a 5xx.

Bounded (examples per operation, no deadline flakiness, fixed seed) and marked `fuzz`, so it can
run apart: `pytest -m fuzz`. In-process through WSGI; names resolve from a stub, so no request
or DNS query leaves the machine.
"""

from __future__ import annotations

import pytest
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from rest_framework.authtoken.models import Token

from subscriptions.models import EventType, Subscription
from webhooks_core import netguard

# Optional tools (requirements-dev.txt): without them this file is skipped, not a collection
# error. hypothesis comes with schemathesis.
schemathesis = pytest.importorskip("schemathesis")
hypothesis = pytest.importorskip("hypothesis")

pytestmark = [pytest.mark.fuzz, pytest.mark.timeout(240)]

EXAMPLES_PER_OPERATION = 40


# Loaded at import: pytest-django has configured Django by then, and serving the schema needs
# no database.
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())


@pytest.fixture
def keep_connection(db):
    """As Django's test client does: the WSGI handler would otherwise close the connection that
    holds the test's transaction at the end of every request."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def world(keep_connection, django_user_model):
    """A user holding every permission (so that every endpoint, tenants included, gets past
    its permission check), and rows for the detail paths to find."""
    netguard.set_resolver(lambda host, port: ["93.184.215.14"])
    user = django_user_model.objects.create_user("fuzzer", is_superuser=True)
    EventType.objects.create(name="order.created", schema={"type": "object"})
    yield {"token": Token.objects.create(user=user).key, "user": user}
    netguard.set_resolver(None)


def existing_subscription(user) -> Subscription:
    sub = Subscription.objects.filter(owner=user).first()
    return sub or Subscription.objects.create(
        owner=user, url="https://hooks.example.com/in", event_types=["order.created"]
    )


@schema.parametrize()
@hypothesis.settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_no_input_causes_a_server_error(case, world):
    # Half the cases aim at rows that exist, so detail views get past their 404.
    params = case.path_parameters or {}
    if "id" in params and case.path.startswith("/api/subscriptions/") and hash(str(params)) % 2:
        params["id"] = str(existing_subscription(world["user"]).pk)
    if "name" in params and hash(str(params)) % 2:
        params["name"] = "order.created"
    case.call_and_validate(
        headers={"Authorization": f"Token {world['token']}"},
        checks=[schemathesis.checks.not_a_server_error],
    )
