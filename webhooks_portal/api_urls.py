"""The portal's API route; mount it beside the apps' API:
`path("api/", include("webhooks_portal.api_urls"))`."""

from django.urls import path

from .api import PortalLinkView, PortalRevokeView

urlpatterns = [
    path("tenants/<str:key>/portal-link/", PortalLinkView.as_view(), name="tenant-portal-link"),
    path(
        "tenants/<str:key>/portal-sessions/revoke/",
        PortalRevokeView.as_view(),
        name="tenant-portal-revoke",
    ),
]
