"""The one URL include of every webhooks API: `path("api/", include("webhooks_core.urls"))`.

It composes the API URLconfs the installed apps registered (`apidocs.register_api`): the
registry's (`subscriptions.urls`: subscriptions, event types, tenants), the pipeline's
(`deliveries.urls`: events, deliveries, a subscription's test and replay actions, metrics,
egress IPs) and, when it is installed, the portal's (`webhooks_portal.api_urls`: portal links);
plus the OpenAPI schema of all of them and its Swagger UI page (`schema/`, `docs/`), and a root
listing them. Mount it under any prefix, with or without a namespace.
"""

from django.urls import include, path

from .apidocs import ApiDocsView, ApiRootView, ApiSchemaView, registered_apis

api_patterns = [path("", include(module)) for module in registered_apis()]

urlpatterns = [
    path("", ApiRootView.as_view(), name="webhooks-api-root"),
    *api_patterns,
    path("schema/", ApiSchemaView.as_view(api_patterns=api_patterns), name="webhooks-schema"),
    path("docs/", ApiDocsView.as_view(), name="webhooks-api-docs"),
]
