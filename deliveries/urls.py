from django.urls import path
from rest_framework.routers import SimpleRouter

from .views import DeliveryViewSet, EventViewSet, SubscriptionTestView

router = SimpleRouter()
router.register("events", EventViewSet, basename="event")
router.register("deliveries", DeliveryViewSet, basename="delivery")

urlpatterns = [
    path(
        "subscriptions/<uuid:pk>/test/",
        SubscriptionTestView.as_view(),
        name="subscription-test",
    ),
    *router.urls,
]
