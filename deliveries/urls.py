from django.urls import path
from rest_framework.routers import SimpleRouter

from .metrics import metrics_view
from .views import DeliveryViewSet, EventViewSet, SubscriptionReplayView

router = SimpleRouter()
router.register("events", EventViewSet, basename="event")
router.register("deliveries", DeliveryViewSet, basename="delivery")

urlpatterns = router.urls
urlpatterns += [
    path(
        "subscriptions/<uuid:pk>/replay/",
        SubscriptionReplayView.as_view(),
        name="subscription-replay",
    ),
]
urlpatterns += [path("metrics/", metrics_view, name="webhooks-metrics")]
