"""The pipeline's API: events, deliveries, a subscription's test, replay and version preview,
metrics and egress IPs. Part of the one include, `webhooks_core.urls` (registered in
`DeliveriesConfig.ready()`); a host mounts that, not this module.
"""

from django.urls import path
from rest_framework.routers import SimpleRouter

from .metrics import metrics_view
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

# The test and replay actions sit under /subscriptions/ but live here: they drive the pipeline,
# which the subscriptions app never imports.
urlpatterns = [
    # The registry's subscription routes take only ids, so this path reaches here.
    path(
        "subscriptions/simulate/",
        SubscriptionSimulateView.as_view(),
        name="subscription-simulate",
    ),
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
