"""The portal's pages; mount with `path("portal/", include("webhooks_portal.urls"))`."""

from django.urls import path
from django.views.generic import RedirectView

from .views import access, catalog, deliveries, endpoints, verify, versions

app_name = "webhooks_portal"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="webhooks_portal:endpoints"), name="home"),
    path("access/", access.enter, name="enter"),
    path("leave/", access.leave, name="leave"),
    path("endpoints/", endpoints.endpoint_list, name="endpoints"),
    path("endpoints/new/", endpoints.endpoint_create, name="endpoint-create"),
    path(
        "endpoints/new/preview/",
        endpoints.endpoint_create_preview,
        name="endpoint-create-preview",
    ),
    path("endpoints/<uuid:pk>/", endpoints.endpoint_detail, name="endpoint"),
    path("endpoints/<uuid:pk>/edit/", endpoints.endpoint_edit, name="endpoint-edit"),
    path(
        "endpoints/<uuid:pk>/edit/preview/",
        endpoints.endpoint_edit_preview,
        name="endpoint-edit-preview",
    ),
    path("endpoints/<uuid:pk>/disable/", endpoints.endpoint_disable, name="endpoint-disable"),
    path("endpoints/<uuid:pk>/enable/", endpoints.endpoint_enable, name="endpoint-enable"),
    path("endpoints/<uuid:pk>/delete/", endpoints.endpoint_delete, name="endpoint-delete"),
    path("endpoints/<uuid:pk>/test/", endpoints.endpoint_test, name="endpoint-test"),
    path("endpoints/<uuid:pk>/rotate-secret/", endpoints.endpoint_rotate, name="endpoint-rotate"),
    path("endpoints/<uuid:pk>/replay/", endpoints.endpoint_replay, name="replay"),
    path(
        "endpoints/<uuid:pk>/versions/<str:name>/",
        versions.endpoint_version,
        name="endpoint-version",
    ),
    path("event-types/", catalog.catalog, name="catalog"),
    path("deliveries/", deliveries.delivery_list, name="deliveries"),
    path("deliveries/rows/", deliveries.delivery_rows, name="delivery-rows"),
    path("deliveries/retry/", deliveries.delivery_bulk_retry, name="deliveries-retry"),
    path("deliveries/<int:pk>/", deliveries.delivery_detail, name="delivery"),
    path("deliveries/<int:pk>/retry/", deliveries.delivery_retry, name="delivery-retry"),
    path("deliveries/<int:pk>/skip/", deliveries.delivery_skip, name="delivery-skip"),
    path("verify/", verify.verify, name="verify"),
]
