from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/", include("subscriptions.urls")),
    path("api/", include("deliveries.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]

# Errors raised outside a DRF view (a middleware, say) answer API clients in JSON too; the
# views of both apps answer every error in JSON themselves (subscriptions/api.py).
handler500 = "subscriptions.api.server_error"
