from django.urls import path
from rest_framework.routers import SimpleRouter

from .metrics import metrics_view
from .tenant_api import TenantViewSet
from .views import DeliveryViewSet, EventViewSet, SubscriptionReplayView, SubscriptionTestView

router = SimpleRouter()
router.register("events", EventViewSet, basename="event")
router.register("deliveries", DeliveryViewSet, basename="delivery")
# Under /api/ with the registry's URLs, but here: its health figures come from the pipeline.
router.register("tenants", TenantViewSet, basename="tenant")

# The test and replay actions sit under /api/subscriptions/ but live here: they drive the
# pipeline, which the subscriptions app never imports.
urlpatterns = [
    path("subscriptions/<uuid:pk>/test/", SubscriptionTestView.as_view(), name="subscription-test"),
    path(
        "subscriptions/<uuid:pk>/replay/",
        SubscriptionReplayView.as_view(),
        name="subscription-replay",
    ),
    path("metrics/", metrics_view, name="webhooks-metrics"),
    *router.urls,
]
