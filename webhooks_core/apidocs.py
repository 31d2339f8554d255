"""The API's front door, served by the one URL include (`webhooks_core.urls`): its root (a
list of links), its OpenAPI schema and the Swagger UI page.

Each app adds its API URLconf with `register_api()` from its `AppConfig.ready()` (the registry
`subscriptions.urls`, the pipeline `deliveries.urls`, the portal `webhooks_portal.api_urls`),
so the include holds exactly the installed apps' APIs and the core imports none of them.

They work in a host project that configured nothing for drf-spectacular: every API view of the
apps names drf-spectacular's `AutoSchema` itself (`webhooks_core.api.APIDefaults`), the schema
covers this API alone (not the host's other views) with its paths as mounted, and the page finds
the schema next to itself whatever prefix or namespace the include has. The page needs
`drf_spectacular` in `INSTALLED_APPS` (its template); with `drf_spectacular_sidecar` as well it
serves Swagger UI's files itself instead of from a CDN (the reference project does).
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.http import HttpRequest
from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.settings import patched_settings
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

# Dotted paths of the installed apps' API URLconfs, in the order the apps became ready
# (INSTALLED_APPS order): the registry's first.
_api_urlconfs: list[str] = []


def register_api(module: str) -> None:
    """Add the API URLconf `module` (a dotted path, e.g. "webhooks_portal.api_urls") to the one
    include, `webhooks_core.urls`, and so to the schema. Call it from an `AppConfig.ready()`:
    the include reads the list when the root URLconf is first loaded, after every app is ready.
    Calling it again for the same module changes nothing."""
    if module not in _api_urlconfs:
        _api_urlconfs.append(module)


def registered_apis() -> list[str]:
    """The dotted paths `register_api()` received, in registration order."""
    return list(_api_urlconfs)


SCHEMA_SETTINGS = {
    "TITLE": "Webhooks API",
    "DESCRIPTION": "Publish events and manage webhook subscriptions.",
    "VERSION": "1.0.0",
    # One name for the delivery states wherever a "status" field lists them (drf-spectacular
    # would otherwise invent "Status946Enum" and warn, W001).
    "ENUM_NAME_OVERRIDES": {"DeliveryStatusEnum": "deliveries.models.DeliveryStatus"},
}


class ApiRootView(APIView):
    """`GET <prefix>/`: where everything is, as absolute URLs. Not in the schema (which covers
    `api_patterns` only)."""

    # Links only; each endpoint checks its own permissions.
    permission_classes = [AllowAny]
    # Not an operation of the API: out of every generated schema, including the one
    # `manage.py check --deploy` builds from the whole URLconf (drf-spectacular's W002).
    schema = None
    resources = (
        "subscriptions",
        "event-types",
        "events",
        "deliveries",
        "tenants",
        "schema",
        "docs",
    )

    def get(self, request: Request) -> Response:
        return Response({name: request.build_absolute_uri(f"{name}/") for name in self.resources})


class ApiSchemaView(SpectacularAPIView):
    """`GET <prefix>/schema/`: the OpenAPI 3 schema of `api_patterns` (YAML, or JSON with
    `?format=json` or `Accept: application/vnd.oai.openapi+json`)."""

    custom_settings = SCHEMA_SETTINGS
    api_patterns: list[URLPattern | URLResolver] = []
    schema = None  # the schema itself is no operation of the API (see ApiRootView)

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Response:
        # The paths as the host mounted them: this view's route up to its own "schema/".
        assert request.resolver_match is not None  # a view is only called through its URL
        prefix = request.resolver_match.route.removesuffix("schema/")
        self.patterns = [path(prefix, include(self.api_patterns))]
        return super().get(request, *args, **kwargs)


class ApiDocsView(SpectacularSwaggerView):
    """`GET <prefix>/docs/`: Swagger UI on the schema next to it."""

    title = str(SCHEMA_SETTINGS["TITLE"])
    # A page, no operation of the API (see ApiRootView): DRF's documented opt-out.
    schema = None

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Response:
        # Next to this page, found by path rather than by URL name, which the include's
        # namespace (if any) would change.
        self.url = request.path.removesuffix("docs/") + "schema/"
        offline = (
            {"SWAGGER_UI_DIST": "SIDECAR", "SWAGGER_UI_FAVICON_HREF": "SIDECAR"}
            if apps.is_installed("drf_spectacular_sidecar")
            else {}
        )
        with patched_settings(offline):
            return super().get(request, *args, **kwargs)
