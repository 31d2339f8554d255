"""The registry's API: subscriptions, event types and tenants. Part of the one include,
`webhooks_core.urls` (registered in `SubscriptionsConfig.ready()`)."""

from rest_framework.routers import SimpleRouter

from .tenant_api import TenantViewSet
from .views import EventTypeViewSet, SubscriptionViewSet

router = SimpleRouter()
router.register("subscriptions", SubscriptionViewSet, basename="subscription")
router.register("event-types", EventTypeViewSet, basename="event-type")
router.register("tenants", TenantViewSet, basename="tenant")

urlpatterns = router.urls
