from rest_framework.routers import SimpleRouter

from .views import EventTypeViewSet, SubscriptionViewSet

router = SimpleRouter()
router.register("subscriptions", SubscriptionViewSet, basename="subscription")
router.register("event-types", EventTypeViewSet, basename="event-type")

urlpatterns = router.urls
