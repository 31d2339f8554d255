"""Where deliveries come from and how receivers trust them, as the API and the portal show it:
`GET /api/egress-ips/`, the endpoint page's allow-list, signature scheme and public key, and the
portal's rotation with a chosen overlap."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from deliveries.checks import check_pipeline_settings as check_pipeline
from subscriptions.models import Subscription
from tests.factories import make_tenant_user
from tests.portal_helpers import portal_url, tenant_endpoint

pytestmark = pytest.mark.django_db
IPS = ["203.0.113.7", "2001:db8::7", "198.51.100.0/28"]


@pytest.fixture
def egress(settings):
    settings.WEBHOOKS = {**settings.WEBHOOKS, "EGRESS_IPS": IPS}



def test_api_lists_the_egress_addresses_to_signed_in_users_only(egress):
    assert APIClient().get("/api/egress-ips/").status_code in (401, 403)
    api = APIClient()
    api.force_authenticate(make_tenant_user("ann", "acme"))
    response = api.get("/api/egress-ips/")
    assert response.status_code == 200
    assert response.json() == {"ips": IPS}


def test_api_lists_none_by_default():
    api = APIClient()
    api.force_authenticate(make_tenant_user("ann", "acme"))
    assert api.get("/api/egress-ips/").json() == {"ips": []}


def test_the_schema_documents_the_egress_addresses():
    api = APIClient()
    api.force_authenticate(make_tenant_user("ann", "acme"))
    schema = api.get("/api/schema/?format=json").json()
    assert "/api/egress-ips/" in schema["paths"]


def test_malformed_egress_settings_are_named_by_the_checks(settings):
    settings.WEBHOOKS = {
        **settings.WEBHOOKS,
        "EGRESS_IPS": ["203.0.113.7", "not-an-ip"],
        "EGRESS_PROXY": "ftp://proxy",
    }
    messages = [m.msg for m in check_pipeline() if m.id == "webhooks.E007"]
    assert any("EGRESS_IPS" in m and "not-an-ip" in m for m in messages)
    assert any("EGRESS_PROXY" in m for m in messages)


def test_the_endpoint_page_lists_the_allow_list_scheme_and_public_key(portal, egress):
    endpoint = tenant_endpoint("acme", signature_scheme="v1 v1a")
    page = portal.get(portal_url("endpoint", endpoint.pk)).content.decode()
    for ip in IPS:
        assert ip in page
    assert endpoint.public_key in page
    assert endpoint.signing_key not in page and endpoint.secret not in page
    assert "v1 and v1a" in page


def test_the_portal_creates_a_v1a_endpoint(portal):
    response = portal.post(
        portal_url("endpoint-create"),
        {
            "url": "http://127.0.0.1:9/new",
            "event_types": ["*"],
            "payload_format": "standard",
            "signature_scheme": "v1a",
        },
    )
    # The answer to the POST is the endpoint's page with its secret, shown this once.
    assert response.status_code == 200, response.content.decode()[:2000]
    assert 'id="secret-reveal"' in response.content.decode()
    created = Subscription.objects.get(url="http://127.0.0.1:9/new")
    assert created.signature_scheme == "v1a" and created.signing_key.startswith("whsk_")


def test_the_portal_rotates_with_the_chosen_overlap(portal):
    endpoint = tenant_endpoint("acme", signature_scheme="v1a")
    old_key = endpoint.signing_key
    form = portal.get(portal_url("endpoint-rotate", endpoint.pk)).content.decode()
    assert 'name="overlap"' in form
    portal.post(portal_url("endpoint-rotate", endpoint.pk), {"overlap": "0"})
    fresh = Subscription.objects.get(pk=endpoint.pk)
    assert fresh.previous_signing_key == old_key
    assert fresh.signing_secrets() == [fresh.signing_key]  # the old key stopped at once

    portal.post(portal_url("endpoint-rotate", endpoint.pk), {"overlap": str(7 * 86400)})
    left = Subscription.objects.get(pk=endpoint.pk).previous_secret_expires_at - timezone.now()
    assert dt.timedelta(days=6, hours=23) < left <= dt.timedelta(days=7)
    refused = portal.post(portal_url("endpoint-rotate", endpoint.pk), {"overlap": "999"})
    assert refused.status_code == 200  # the form again, with its error; nothing rotated
    assert Subscription.objects.get(
        pk=endpoint.pk
    ).previous_secret_expires_at - timezone.now() > dt.timedelta(days=6)


def test_a_stranger_gets_no_portal_page(egress):
    endpoint = tenant_endpoint("acme")
    response = Client().get(portal_url("endpoint", endpoint.pk))
    assert response.status_code in (302, 403, 404)
    assert IPS[0] not in response.content.decode()
