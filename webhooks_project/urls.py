from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    # The API, its OpenAPI schema (/api/schema/) and docs page (/api/docs/): one include.
    path("api/", include("deliveries.urls")),
]

# Errors raised outside a DRF view (a middleware, say) answer API clients in JSON too; the
# views of both apps answer every error in JSON themselves (subscriptions/api.py).
handler500 = "subscriptions.api.server_error"
