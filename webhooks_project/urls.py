from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    # Every API of the installed apps (the portal's link endpoints included), its OpenAPI
    # schema (/api/schema/) and docs page (/api/docs/): one include.
    path("api/", include("webhooks_core.urls")),
    # The customer portal's pages (portal.md).
    path("portal/", include("webhooks_portal.urls")),
]

# Errors raised outside a DRF view (a middleware, say) answer API clients in JSON too; the
# views of both apps answer every error in JSON themselves (webhooks_core/api.py).
handler500 = "webhooks_core.api.server_error"
