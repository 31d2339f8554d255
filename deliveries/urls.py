from django.urls import path
from rest_framework.routers import SimpleRouter

from .metrics import metrics_view
from .views import DeliveryViewSet, EventViewSet, SubscriptionReplayView, SubscriptionTestView

router = SimpleRouter()
router.register("events", EventViewSet, basename="event")
router.register("deliveries", DeliveryViewSet, basename="delivery")

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
