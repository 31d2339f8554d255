"""Custom header values are write-only in every door (API, admin, portal), and stored values
never follow the endpoint to another origin unless the same request gives them again."""

from __future__ import annotations

import pytest
from django.urls import reverse

from subscriptions.forms import HEADERS_HELP, parse_header_lines
from subscriptions.headers import HEADER_MASK, origin
from subscriptions.models import Subscription
from tests.factories import api_client, make_subscription, make_tenant_user
from tests.portal_helpers import portal_url

pytestmark = pytest.mark.django_db

TENANT = "acme"
HEADERS = {"Authorization": "Bearer s3cret", "X-Team": "shop"}
SAME_ORIGIN = "http://127.0.0.1:9/other/path"
OTHER_ORIGINS = ["http://127.0.0.2:9/hook", "http://127.0.0.1:10/hook", "https://127.0.0.1:9/hook"]


@pytest.fixture
def endpoint():
    return make_subscription("http://127.0.0.1:9/hook", tenant=TENANT, headers=HEADERS)


@pytest.fixture
def tenant_api(endpoint):
    return api_client(make_tenant_user("alice", TENANT))


@pytest.fixture
def portal(client, endpoint):
    client.force_login(make_tenant_user("bob", TENANT))
    return client


def test_origin_is_scheme_host_and_port():
    assert origin("HTTPS://Hooks.Example.com/a") == origin("https://hooks.example.com:443/b")
    assert origin("http://h/") != origin("https://h/")
    assert origin("http://h/") != origin("http://h:8080/")


def test_header_lines_keep_empty_and_masked_values_as_the_mask():
    assert parse_header_lines(f"A: {HEADER_MASK}\nB:\nC: new value\n\n") == {
        "A": HEADER_MASK,
        "B": HEADER_MASK,
        "C": "new value",
    }


# --- 2. the API: a new origin needs the headers again ----------------------------------------


@pytest.mark.parametrize("url", OTHER_ORIGINS)
def test_moving_to_another_origin_without_headers_is_a_400(tenant_api, endpoint, url):
    path = f"/api/subscriptions/{endpoint.pk}/"

    patched = tenant_api.patch(path, {"url": url}, format="json")
    echoed = tenant_api.get(path).json()  # headers come back masked
    put = tenant_api.put(path, {**echoed, "url": url}, format="json")

    for response in (patched, put):
        assert response.status_code == 400, response.content
        assert "origin" in response.json()["headers"][0]
    endpoint.refresh_from_db()
    assert endpoint.url == "http://127.0.0.1:9/hook" and endpoint.headers == HEADERS


def test_moving_to_another_origin_with_new_values_or_none(tenant_api, endpoint):
    path = f"/api/subscriptions/{endpoint.pk}/"

    given = tenant_api.patch(
        path, {"url": OTHER_ORIGINS[0], "headers": {"Authorization": "Bearer n3w"}}, format="json"
    )
    endpoint.refresh_from_db()
    assert given.status_code == 200, given.content
    assert endpoint.headers == {"Authorization": "Bearer n3w"}

    dropped = tenant_api.patch(path, {"url": OTHER_ORIGINS[1], "headers": {}}, format="json")
    endpoint.refresh_from_db()
    assert dropped.status_code == 200, dropped.content
    assert endpoint.url == OTHER_ORIGINS[1] and endpoint.headers == {}


def test_the_same_origin_keeps_the_stored_values(tenant_api, endpoint):
    response = tenant_api.patch(
        f"/api/subscriptions/{endpoint.pk}/", {"url": SAME_ORIGIN}, format="json"
    )

    assert response.status_code == 200, response.content
    endpoint.refresh_from_db()
    assert endpoint.url == SAME_ORIGIN and endpoint.headers == HEADERS


def test_an_endpoint_without_headers_moves_freely(tenant_api):
    bare = make_subscription("http://127.0.0.1:9/bare", tenant=TENANT)
    response = tenant_api.patch(
        f"/api/subscriptions/{bare.pk}/", {"url": OTHER_ORIGINS[0]}, format="json"
    )
    assert response.status_code == 200, response.content


# --- 1. the portal's form ---------------------------------------------------------------------


def edit(portal, endpoint, **changes):
    data = {
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": list(endpoint.event_types),
        "payload_format": endpoint.payload_format,
        "headers": "",
        "max_in_flight": "",
        **changes,
    }
    return portal.post(portal_url("endpoint-edit", endpoint.pk), data)


def test_the_portal_form_shows_names_with_the_mask_never_values(portal, endpoint):
    page = portal.get(portal_url("endpoint-edit", endpoint.pk))
    html = page.content.decode()

    assert page.status_code == 200
    assert "s3cret" not in html and "shop" not in html
    assert f"Authorization: {HEADER_MASK}" in html and f"X-Team: {HEADER_MASK}" in html
    assert str(HEADERS_HELP).split("'")[0] in html  # says what is masked where


def test_the_portal_form_keeps_replaces_and_removes_by_line(portal, endpoint):
    response = edit(
        portal, endpoint, headers=f"Authorization: {HEADER_MASK}\nX-New: v2\n"
    )  # X-Team's line deleted

    assert response.status_code == 302, response.content.decode()
    endpoint.refresh_from_db()
    assert endpoint.headers == {"Authorization": "Bearer s3cret", "X-New": "v2"}

    assert edit(portal, endpoint, headers="Authorization:\nX-New: v3").status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.headers == {"Authorization": "Bearer s3cret", "X-New": "v3"}


def test_the_portal_refuses_kept_values_for_a_new_origin(portal, endpoint):
    kept = edit(
        portal, endpoint, url=OTHER_ORIGINS[0], headers=f"Authorization: {HEADER_MASK}\nX-Team:"
    )

    assert kept.status_code == 400  # the portal answers an invalid form with 400
    assert "origin" in " ".join(kept.context["form"].errors["headers"])
    endpoint.refresh_from_db()
    assert endpoint.url == "http://127.0.0.1:9/hook" and endpoint.headers == HEADERS

    retyped = edit(portal, endpoint, url=OTHER_ORIGINS[0], headers="Authorization: Bearer n3w")
    assert retyped.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.headers == {"Authorization": "Bearer n3w"}


def test_an_empty_value_for_a_new_header_is_refused(portal, endpoint):
    response = edit(portal, endpoint, headers="X-Unknown:")
    assert response.status_code == 400 and "headers" in response.context["form"].errors


# --- 1 and 2. the admin's form ----------------------------------------------------------------


def admin_edit(admin_client, endpoint, **changes):
    data = {
        "tenant": TENANT,
        "url": endpoint.url,
        "description": "",
        "event_types": '["*"]',
        "payload_format": "standard",
        "headers": "",
        **changes,
    }
    url = reverse("admin:webhook_subscriptions_subscription_change", args=[endpoint.pk])
    return admin_client.post(url, data)


def test_the_admin_form_masks_keeps_replaces_and_removes(admin_client, endpoint):
    url = reverse("admin:webhook_subscriptions_subscription_change", args=[endpoint.pk])
    page = admin_client.get(url)
    assert b"s3cret" not in page.content
    assert f"Authorization: {HEADER_MASK}".encode() in page.content

    response = admin_edit(admin_client, endpoint, headers="Authorization:\nX-Other: 1")

    assert response.status_code == 302, response.content
    endpoint.refresh_from_db()
    assert endpoint.headers == {"Authorization": "Bearer s3cret", "X-Other": "1"}


def test_the_admin_refuses_kept_values_for_a_new_origin(admin_client, endpoint):
    response = admin_edit(
        admin_client, endpoint, url=OTHER_ORIGINS[2], headers=f"Authorization: {HEADER_MASK}"
    )

    assert response.status_code == 200
    assert "origin" in " ".join(response.context["adminform"].form.errors["headers"])
    endpoint.refresh_from_db()
    assert endpoint.headers == HEADERS and endpoint.url == "http://127.0.0.1:9/hook"

    assert admin_edit(admin_client, endpoint, url=OTHER_ORIGINS[2]).status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.headers == {} and endpoint.url == OTHER_ORIGINS[2]
    assert Subscription.objects.count() == 1
