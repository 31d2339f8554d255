"""Portal links are used once, can be revoked, and never silently swap a browser into another
tenant (shared/DESIGN.md, "Security"); their tokens stay out of our logs."""

from __future__ import annotations

import logging

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from rest_framework.test import APIClient

from subscriptions.models import Tenant
from subscriptions.operators import OPERATORS_GROUP
from tests.factories import make_tenant_user
from tests.portal_helpers import open_portal, portal_url, tenant_endpoint
from webhooks_portal import access
from webhooks_portal.models import PortalGrant

pytestmark = pytest.mark.django_db

A, B = "acme", "globex"


@pytest.fixture(autouse=True)
def tenants():
    Tenant.objects.create(key=A, name="Acme Inc.")
    Tenant.objects.create(key=B, name="Globex Corp.")
    tenant_endpoint(A, description="Acme hook")
    tenant_endpoint(B, description="Globex hook")


def shows(client: Client) -> str | None:
    """Which tenant's endpoints the portal shows this browser (None: the no-access page)."""
    page = client.get(portal_url("endpoints"))
    if page.status_code == 403:
        return None
    assert page.status_code == 200
    body = page.content.decode()
    return A if "Acme hook" in body else B if "Globex hook" in body else "?"


def operator_api() -> APIClient:
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user("backend")
    user.groups.add(Group.objects.get(name=OPERATORS_GROUP))
    api = APIClient()
    api.force_authenticate(get_user_model().objects.get(pk=user.pk))
    return api


# --- Used once --------------------------------------------------------------------------------


def test_a_link_opens_one_session_and_answers_already_used_afterwards():
    path = access.entry_path(access.make_token(A))
    first, second = Client(), Client()

    assert first.get(path).status_code == 302
    again = second.get(path)

    assert again.status_code == 403
    assert "This link was already used" in again.content.decode()
    assert "ask for a new one" in again.content.decode().lower()
    assert access.SESSION_KEY not in second.session
    assert shows(second) is None
    assert shows(first) == A


def test_a_head_request_does_not_spend_the_link():
    path = access.entry_path(access.make_token(A))

    assert Client().head(path).status_code == 200
    assert Client().get(path).status_code == 302


def test_the_browser_that_used_a_link_may_follow_it_again():
    # The Back button: the same browser, the same link, the session it opened.
    client = Client()
    path = access.entry_path(access.make_token(A))
    client.get(path)

    assert client.get(path).status_code == 302
    assert shows(client) == A


def test_leave_ends_the_session_for_good_even_for_a_copied_cookie(settings):
    client = Client()
    open_portal(client, A)
    copy = Client()
    copy.cookies[settings.SESSION_COOKIE_NAME] = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert shows(copy) == A

    client.post(portal_url("leave"))

    assert shows(client) is None
    assert shows(copy) is None  # the grant is closed, whoever holds the cookie


# --- Revocation -------------------------------------------------------------------------------


def test_revoke_from_python_ends_sessions_and_unused_links_of_that_tenant_only():
    in_a, in_b = Client(), Client()
    open_portal(in_a, A)
    open_portal(in_b, B)
    unused = access.entry_path(access.make_token(A))

    assert access.revoke(A) == 2

    assert shows(in_a) is None
    assert shows(in_b) == B
    refused = Client().get(unused)
    assert refused.status_code == 403 and "already used" in refused.content.decode()
    assert access.revoke(A) == 0  # nothing open any more


def test_revoke_from_the_api():
    client = Client()
    open_portal(client, A)
    api = operator_api()

    response = api.post(f"/api/tenants/{A}/portal-sessions/revoke/")

    assert response.status_code == 200
    assert response.json() == {"revoked": 1}
    assert shows(client) is None
    assert api.post("/api/tenants/nobody-here/portal-sessions/revoke/").status_code == 404
    assert api.post("/api/tenants/bad key!/portal-sessions/revoke/").status_code == 400


def test_revoke_from_the_admin(django_user_model):
    client = Client()
    open_portal(client, A)
    admin = Client()
    admin.force_login(django_user_model.objects.create_superuser("root", password="pw"))
    changelist = admin.get("/admin/webhook_subscriptions/tenant/")
    assert "revoke_portal_access" in changelist.content.decode()

    response = admin.post(
        "/admin/webhook_subscriptions/tenant/",
        {"action": "revoke_portal_access", "_selected_action": [A]},
        follow=True,
    )

    assert response.status_code == 200
    assert "1 portal link or session revoked." in response.content.decode()
    assert shows(client) is None


# --- No silent swap ---------------------------------------------------------------------------


def test_a_link_of_another_tenant_asks_before_replacing_an_open_portal_session():
    victim = Client()
    open_portal(victim, A)
    planted = access.entry_path(access.make_token(B))  # the attacker's own link

    page = victim.get(planted)

    assert page.status_code == 200
    body = page.content.decode()
    assert 'id="link-confirm"' in body
    assert "Acme Inc." in body and "Globex Corp." in body
    assert shows(victim) == A  # nothing swapped
    # The link is still unused: the confirmation spends nothing.
    assert PortalGrant.objects.filter(tenant_id=B, used_at__isnull=True).count() == 1

    switched = victim.post(planted.split("?")[0], {"token": page.context["token"]})

    assert switched.status_code == 302
    assert shows(victim) == B


def test_the_confirmation_is_a_csrf_checked_post():
    victim = Client(enforce_csrf_checks=True)
    open_portal(victim, A)
    token = access.make_token(B)

    # A cross-site form POST carries no CSRF token: refused, nothing swapped or spent.
    forged = victim.post(portal_url("enter"), {"token": token})

    assert forged.status_code == 403
    assert shows(victim) == A
    assert PortalGrant.objects.filter(tenant_id=B, used_at__isnull=True).count() == 1


@pytest.mark.parametrize("own", [B, None], ids=["host-user-of-another-tenant", "no-tenant"])
def test_a_link_asks_a_logged_in_host_user_before_replacing_their_own_tenant(
    django_user_model, own
):
    user = make_tenant_user("gus", own) if own else django_user_model.objects.create_user("gus")
    victim = Client()
    victim.force_login(user)

    page = victim.get(access.entry_path(access.make_token(A)))

    assert page.status_code == 200 and 'id="link-confirm"' in page.content.decode()
    assert shows(victim) == own
    if own:
        assert "Globex Corp." in page.content.decode()


def test_a_fresh_browser_and_a_user_of_the_links_tenant_enter_directly():
    assert Client().get(access.entry_path(access.make_token(A))).status_code == 302
    colleague = Client()
    colleague.force_login(make_tenant_user("ann", A))
    assert colleague.get(access.entry_path(access.make_token(A))).status_code == 302


# --- Logs -------------------------------------------------------------------------------------


def test_no_token_reaches_a_log_record(caplog, monkeypatch):
    used = access.make_token(A)
    Client().get(access.entry_path(used))
    fresh = access.make_token(A)
    tampered = fresh[:-2] + ("AA" if not fresh.endswith("AA") else "BB")
    expired = access.make_token(B)

    with caplog.at_level(logging.DEBUG):
        for token in (used, tampered):
            assert Client().get(access.entry_path(token)).status_code in (400, 403)
        import time

        from django.core import signing

        later = time.time() + 10**6
        monkeypatch.setattr(signing.time, "time", lambda: later)
        assert Client().get(access.entry_path(expired)).status_code == 403

    assert any(r.name == "django.request" for r in caplog.records)  # the refusals were logged
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for token in (used, tampered, expired):
        assert token not in logged
        assert token.split(":")[0] not in logged
