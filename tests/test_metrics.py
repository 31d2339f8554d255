"""The Prometheus endpoint: opt-in, protected, and read from the database at scrape time."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Permission
from django.test import override_settings
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from deliveries.models import Delivery
from deliveries.services import publish
from tests.factories import make_subscription
from tests.ops_helpers import make_delivery
from tests.procs import wait_until
from tests.settings import WEBHOOKS

URL = "/api/metrics/"
ENABLED = {**WEBHOOKS, "METRICS_ENABLED": True, "METRICS_TOKEN": "s3cret-token"}


def scrape(client) -> dict[tuple[str, tuple], float]:
    response = client.get(URL, HTTP_AUTHORIZATION="Bearer s3cret-token")
    assert response.status_code == 200, response.content
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


@pytest.mark.django_db
def test_metrics_are_off_by_default(client):
    assert client.get(URL).status_code == 404


@pytest.mark.django_db
@override_settings(WEBHOOKS=ENABLED)
def test_metrics_need_the_token_or_the_view_delivery_permission(client, django_user_model):
    assert client.get(URL).status_code == 401
    assert client.get(URL, HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get(URL, HTTP_AUTHORIZATION="Bearer s3cret-tokén").status_code == 401
    client.force_login(django_user_model.objects.create_user("plain"))
    assert client.get(URL).status_code == 401
    # is_staff alone does not show every tenant's traffic; the model permission does.
    ops = django_user_model.objects.create_user("ops", is_staff=True)
    client.force_login(ops)
    assert client.get(URL).status_code == 401
    ops.user_permissions.add(Permission.objects.get(codename="view_delivery"))
    client.force_login(django_user_model.objects.get(pk=ops.pk))
    assert client.get(URL).status_code == 200
    client.logout()
    assert client.get(URL, HTTP_AUTHORIZATION="Bearer s3cret-token").status_code == 200


@pytest.mark.django_db
@override_settings(WEBHOOKS=ENABLED)
def test_backlog_and_oldest_due_age(client):
    sub = make_subscription("http://127.0.0.1:9/x")
    now = timezone.now()
    for minutes in (1, 5):
        make_delivery(sub, "retrying", next_attempt_at=now - dt.timedelta(minutes=minutes))
    make_delivery(sub, "retrying", next_attempt_at=now + dt.timedelta(hours=1))  # not due yet
    samples = scrape(client)
    assert samples[("webhooks_backlog_due", ())] == 2
    assert 295 <= samples[("webhooks_backlog_oldest_due_seconds", ())] <= 360
    assert samples[("webhooks_deliveries", (("status", "retrying"),))] == 3


@pytest.mark.integration
@override_settings(WEBHOOKS=ENABLED)
def test_metrics_change_as_deliveries_happen(worker, receiver, client):
    make_subscription(receiver.url("/m"))
    before = scrape(client)

    event = publish("order.created", {})
    assert wait_until(lambda: Delivery.objects.filter(event=event, status="succeeded").exists())

    after = scrape(client)
    key = ("webhooks_deliveries_window", (("status", "succeeded"),))
    assert after[key] == before[key] + 1
    count = ("webhooks_attempt_duration_seconds_gcount", ())
    assert after[count] == before[count] + 1
    outcome = ("webhooks_attempts_window", (("outcome", "succeeded"),))
    assert after[outcome] == before[outcome] + 1
    inf = ("webhooks_attempt_duration_seconds_bucket", (("le", "+Inf"),))
    assert after[inf] == before[inf] + 1
    assert after[("webhooks_backlog_due", ())] == 0


@pytest.mark.django_db
@override_settings(WEBHOOKS=ENABLED)
def test_subscriptions_by_state_are_counted_at_most_once_a_minute(client, monkeypatch):
    from deliveries import metrics

    clock = [1000.0]
    monkeypatch.setattr(metrics.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(metrics, "_states", None)
    make_subscription("http://127.0.0.1:9/on")
    make_subscription("http://127.0.0.1:9/off", is_active=False)
    active = ("webhooks_subscriptions", (("state", "active"),))
    disabled = ("webhooks_subscriptions", (("state", "disabled"),))

    first = scrape(client)
    make_subscription("http://127.0.0.1:9/on2")
    clock[0] += metrics.SUBSCRIPTION_COUNT_TTL - 1
    cached = scrape(client)
    clock[0] += 1
    counted = scrape(client)

    assert (first[active], first[disabled]) == (1, 1)
    assert (cached[active], cached[disabled]) == (1, 1)  # the count of a minute ago
    assert (counted[active], counted[disabled]) == (2, 1)
