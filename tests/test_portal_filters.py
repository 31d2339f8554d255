"""The portal's endpoint form: filter and channels fields, and the preview panel that shows what
the draft would have received from the tenant's recent events before saving."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from deliveries.models import Event
from subscriptions.filterlang import to_jsonpath
from subscriptions.models import EventType, Subscription, Tenant
from tests.portal_helpers import open_portal, portal_url, tenant_endpoint
from tests.stubdns import resolving

pytestmark = pytest.mark.django_db

TENANT = "acme"


@pytest.fixture
def portal(client):
    Tenant.objects.create(key=TENANT, name="Acme Inc.")
    Tenant.objects.create(key="rival", name="Rival")
    EventType.objects.create(name="order.created")
    EventType.objects.create(name="order.paid")
    open_portal(client, TENANT)
    with resolving({"hooks.example.com": ["93.184.216.34"]}):
        yield client


def event(tenant, type, data, channels=(), age=1):
    return Event.objects.create(
        tenant_id=tenant,
        type=type,
        data=data,
        channels=list(channels),
        created_at=timezone.now() - dt.timedelta(seconds=age),
    )


def draft(**fields):
    return {
        "url": "https://hooks.example.com/orders",
        "description": "Big orders",
        "event_types": ["order.created"],
        "filter": "",
        "channels": "",
        "payload_format": "standard",
        "headers": "",
        **fields,
    }


def test_an_endpoint_is_created_with_a_filter_and_channels(portal):
    response = portal.post(
        portal_url("endpoint-create"),
        draft(filter='{"data.total": {"$gte": 100}}', channels="eu, vip"),
    )
    assert response.status_code == 200, response.content
    sub = Subscription.objects.get(description="Big orders")
    assert (sub.filter, sub.channels) == ({"data.total": {"$gte": 100}}, ["eu", "vip"])
    assert sub.filter_jsonpath == to_jsonpath({"data.total": {"$gte": 100}}) is not None
    # The edit form shows them back.
    page = portal.get(portal_url("endpoint-edit", sub.pk)).content.decode()
    assert "data.total" in page and 'value="eu, vip"' in page


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"filter": '{"data.total": {"$gte": }'}, "Not JSON"),
        ({"filter": '{"data.total": {"$gte": [1]}}'}, "data.total &gt; $gte"),
        ({"channels": "eu, b@d"}, "[1]: a channel name"),
    ],
)
def test_the_form_refuses_a_bad_filter_or_channels(portal, fields, message):
    response = portal.post(portal_url("endpoint-create"), draft(**fields))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Subscription.objects.exists()


def test_the_preview_shows_what_the_draft_would_have_received_and_saves_nothing(portal):
    big = event(TENANT, "order.created", {"total": 250}, ["eu"], age=1)
    event(TENANT, "order.created", {"total": 5}, ["eu"], age=2)
    event(TENANT, "order.paid", {"total": 900}, ["eu"], age=3)
    rival = event("rival", "order.created", {"total": 999, "secret": "rival-data"}, ["eu"])
    response = portal.post(
        portal_url("endpoint-create-preview"),
        draft(filter='{"data.total": {"$gte": 100}}', channels="eu", url="not finished"),
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "<strong>1</strong> of your last 3 events would have been sent." in page
    assert "&quot;total&quot;: 250" in page
    # Never another tenant's event, and nothing saved; the form keeps what was typed and
    # does not judge the unfinished URL yet.
    assert "rival-data" not in page and str(rival.pk) not in page
    assert not Subscription.objects.exists()
    assert 'value="not finished"' in page and "data.total" in page
    # "Save" still goes to the create page, and the listed event is the one that matched.
    assert f'action="{portal_url("endpoint-create")}"' in page
    assert response.context["simulation"].events == [big]


def test_the_preview_of_an_edit_uses_the_draft_not_the_saved_endpoint(portal):
    sub = tenant_endpoint(TENANT, event_types=["order.created"], description="Saved")
    event(TENANT, "order.paid", {"total": 1})
    response = portal.post(
        portal_url("endpoint-edit-preview", sub.pk), draft(event_types=["order.paid"])
    )
    assert "<strong>1</strong> of your last 1 events" in response.content.decode()
    sub.refresh_from_db()
    assert sub.event_types == ["order.created"] and sub.description == "Saved"
    # Another tenant's endpoint is a 404, as every other page of it.
    theirs = tenant_endpoint("rival")
    assert portal.post(portal_url("endpoint-edit-preview", theirs.pk), draft()).status_code == 404


def test_the_preview_names_the_field_of_a_bad_draft(portal):
    response = portal.post(portal_url("endpoint-create-preview"), draft(filter='{"amount": 1}'))
    assert response.status_code == 400
    assert "Filter (optional): amount: a path is type, channels or data." in (
        response.content.decode()
    )


def test_previews_are_throttled(portal, settings):
    settings.WEBHOOKS = {**settings.WEBHOOKS, "THROTTLE_RATES": {"simulate": "1/minute"}}
    assert portal.post(portal_url("endpoint-create-preview"), draft()).status_code == 200
    assert portal.post(portal_url("endpoint-create-preview"), draft()).status_code == 429
