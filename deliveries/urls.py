"""The one URL include of the webhooks apps: `path("api/", include("deliveries.urls"))`.

It mounts the registry's API (`subscriptions.urls`: subscriptions, event types), the pipeline's
(events, deliveries, a subscription's test and replay actions, metrics), the OpenAPI schema and
its Swagger UI page (`schema/`, `docs/`) of both, and a root listing them.
"""

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from .apidocs import ApiDocsView, ApiRootView, ApiSchemaView
from .metrics import metrics_view
from .tenant_api import TenantViewSet
from .views import (
    DeliveryViewSet,
    EgressIPsView,
    EventViewSet,
    SubscriptionReplayView,
    SubscriptionSimulateView,
    SubscriptionTestView,
    SubscriptionVersionPreviewView,
)

router = SimpleRouter()
router.register("events", EventViewSet, basename="event")
router.register("deliveries", DeliveryViewSet, basename="delivery")
# Under /api/ with the registry's URLs, but here: its health figures come from the pipeline.
router.register("tenants", TenantViewSet, basename="tenant")

# The test and replay actions sit under /subscriptions/ but live here: they drive the pipeline,
# which the subscriptions app never imports.
api_patterns = [
    # Before the registry's URLs, whose subscription routes would take "simulate" for an id.
    path(
        "subscriptions/simulate/",
        SubscriptionSimulateView.as_view(),
        name="subscription-simulate",
    ),
    path("", include("subscriptions.urls")),
    path("subscriptions/<uuid:pk>/test/", SubscriptionTestView.as_view(), name="subscription-test"),
    path(
        "subscriptions/<uuid:pk>/replay/",
        SubscriptionReplayView.as_view(),
        name="subscription-replay",
    ),
    path(
        "subscriptions/<uuid:pk>/versions/preview/",
        SubscriptionVersionPreviewView.as_view(),
        name="subscription-version-preview",
    ),
    path("metrics/", metrics_view, name="webhooks-metrics"),
    path("egress-ips/", EgressIPsView.as_view(), name="webhooks-egress-ips"),
    *router.urls,
]

urlpatterns = [
    path("", ApiRootView.as_view(), name="webhooks-api-root"),
    *api_patterns,
    path("schema/", ApiSchemaView.as_view(api_patterns=api_patterns), name="webhooks-schema"),
    path("docs/", ApiDocsView.as_view(), name="webhooks-api-docs"),
]
