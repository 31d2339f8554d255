"""One include gives a host the API, its OpenAPI schema and its docs page, with none of the
reference project's REST_FRAMEWORK or SPECTACULAR_SETTINGS: a minimal host project in its own
process (the API modules must be imported under the host's settings, as in a real host)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from tests.procs import ROOT

SETTINGS = """
SECRET_KEY = "x"
DEBUG = True
ALLOWED_HOSTS = ["testserver"]
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.auth", "django.contrib.contenttypes", "django.contrib.staticfiles",
    "rest_framework", "drf_spectacular", "drf_spectacular_sidecar", "django_celery_beat",
    "subscriptions", "deliveries",
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]
STATIC_URL = "static/"
ROOT_URLCONF = "hostproj.urls"
"""

URLS = """
from django.urls import include, path

urlpatterns = [path("hooks/v1/", include(("webhooks_core.urls", "hooks"), namespace="hooks"))]
"""

CLIENT = """
import json
import django

django.setup()
from django.test import Client

client = Client()
schema = client.get("/hooks/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
docs = client.get("/hooks/v1/docs/")
print(json.dumps({
    "schema_status": schema.status_code,
    "schema": schema.json() if schema.status_code == 200 else schema.content.decode()[:2000],
    "docs_status": docs.status_code,
    "docs": docs.content.decode(),
}))
"""


def test_schema_and_docs_page_work_in_a_host_without_settings_for_them(tmp_path):
    package = tmp_path / "hostproj"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "settings.py").write_text(textwrap.dedent(SETTINGS))
    (package / "urls.py").write_text(textwrap.dedent(URLS))
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CELERY", "DJANGO", "WEBHOOKS"))
    }
    env.update(
        PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}", DJANGO_SETTINGS_MODULE="hostproj.settings"
    )
    result = subprocess.run(
        [sys.executable, "-c", CLIENT], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])

    assert answer["schema_status"] == 200, answer["schema"]
    schema = answer["schema"]
    assert schema["info"]["title"] == "Webhooks API"
    # Every path as the host mounted it, and only this API's.
    assert {
        "/hooks/v1/subscriptions/",
        "/hooks/v1/subscriptions/{id}/rotate-secret/",
        "/hooks/v1/subscriptions/{id}/test/",
        "/hooks/v1/event-types/",
        "/hooks/v1/events/",
        "/hooks/v1/deliveries/{id}/retry/",
    } <= set(schema["paths"])
    assert all(p.startswith("/hooks/v1/") for p in schema["paths"])
    # The annotated operations kept their annotations (their schema base is drf-spectacular's).
    assert "202" in schema["paths"]["/hooks/v1/events/"]["post"]["responses"]
    rotate = schema["paths"]["/hooks/v1/subscriptions/{id}/rotate-secret/"]["post"]
    assert rotate["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/RotatedSecret"
    )
    assert answer["docs_status"] == 200
    assert "swagger-ui" in answer["docs"] and '"/hooks/v1/schema/"' in answer["docs"]
    assert "/static/drf_spectacular_sidecar/" in answer["docs"]  # served here, not from a CDN


def test_the_api_root_lists_where_everything_is(client):
    response = client.get("/api/")

    assert response.status_code == 200
    assert response.json()["docs"] == "http://testserver/api/docs/"
    assert response.json()["events"] == "http://testserver/api/events/"
    for url in response.json().values():
        assert client.get(url).status_code in {200, 401, 403}, url
