"""The API's front door, served by the one URL include: its root (a list of links), its
OpenAPI schema and the Swagger UI page.

They work in a host project that configured nothing for drf-spectacular: every API view of both
apps names drf-spectacular's `AutoSchema` itself (`subscriptions.api.APIDefaults`),
the schema covers this API alone (not the host's other views) with its paths as mounted, and
the page finds the schema next to itself whatever prefix or namespace the include has. The page
needs `drf_spectacular` in `INSTALLED_APPS` (its template); with `drf_spectacular_sidecar` as
well it serves Swagger UI's files itself instead of from a CDN (the reference project does).
Another app's API URLconf, mounted by the host with its own include (the portal's
`portal.api_urls`), joins the schema at the path where it is mounted through
`document_urlconf()`, called from that app's `AppConfig.ready()`.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.http import HttpRequest
from django.urls import URLPattern, URLResolver, get_resolver, include, path
from drf_spectacular.settings import patched_settings
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

# Dotted paths of other apps' API URLconfs that the schema also covers where they are mounted.
_documented_urlconfs: list[str] = []


def document_urlconf(module: str) -> None:
    """Add the API URLconf `module` (a dotted path, e.g. "portal.api_urls") to the schema, at
    the route(s) where the root URLconf includes it; not mounted, it stays out. Call it from
    an `AppConfig.ready()`; calling it again for the same module changes nothing."""
    if module not in _documented_urlconfs:
        _documented_urlconfs.append(module)


def _mounts(
    patterns: list[URLPattern | URLResolver], modules: set[str], prefix: str = ""
) -> list[URLResolver]:
    """`path(route, include(module))` for each include of one of `modules` in `patterns`,
    nested includes followed, `route` the whole route from the root."""
    found: list[URLResolver] = []
    for entry in patterns:
        if not isinstance(entry, URLResolver):
            continue
        route = prefix + str(entry.pattern)
        # A module, its dotted path, or a list of patterns (`include([...])`).
        name = getattr(entry.urlconf_name, "__name__", entry.urlconf_name)
        if isinstance(name, str) and name in modules:
            found.append(path(route, include(name)))
        else:
            found += _mounts(entry.url_patterns, modules, route)
    return found


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
    resources = ("subscriptions", "event-types", "events", "deliveries", "schema", "docs")

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
        self.patterns = [
            path(prefix, include(self.api_patterns)),
            *_mounts(get_resolver().url_patterns, set(_documented_urlconfs)),
        ]
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
