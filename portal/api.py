"""POST /api/tenants/{key}/portal-link/: a signed, expiring link to one tenant's portal, for
the host's backend (the way Svix's app-portal access works)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse
from rest_framework import permissions, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from subscriptions import wire
from subscriptions.access import has_any_perm, model_perms
from subscriptions.api import APIDefaults, extend_schema
from subscriptions.models import Subscription, Tenant, is_valid_tenant_key

from . import access


class CanMakePortalLinks(permissions.BasePermission):
    """Whoever may change every tenant's subscriptions may hand one tenant the pages that change
    its own: the `webhook_subscriptions.change_subscription` model permission, as in the admin
    (superusers hold it). `is_staff` alone is not enough, and neither is being a tenant user."""

    def has_permission(self, request: Request, view: object) -> bool:
        return has_any_perm(request.user, model_perms(Subscription, ("change",)))


class PortalLinkSerializer(serializers.Serializer):
    url = serializers.URLField(help_text="Open it (or put it in an iframe) within its lifetime.")
    expires_at = wire.DateTimeField(help_text="The link cannot be opened after this.")


class PortalLinkView(APIDefaults, APIView):
    """In the API's schema (`/api/schema/`) once mounted: `PortalConfig.ready()` adds
    `portal.api_urls` to the schema's URLconfs (`deliveries.apidocs.document_urlconf`)."""

    permission_classes = [CanMakePortalLinks]

    @extend_schema(
        operation_id="tenants_portal_link_create",
        tags=["tenants"],
        request=None,
        responses={
            200: PortalLinkSerializer,
            400: OpenApiResponse(description="Not a valid tenant key."),
            403: OpenApiResponse(
                description="Needs the webhook_subscriptions.change_subscription permission."
            ),
        },
        description="A signed link that opens the portal for this tenant alone. It can be "
        "opened until `expires_at` (`WEBHOOKS['PORTAL_LINK_MAX_AGE']`, default 1 hour) and "
        "starts a portal session of `PORTAL_SESSION_AGE` seconds. Call it from your backend "
        "each time you show the portal; never from a browser with your API token.",
    )
    def post(self, request: Request, key: str) -> Response:
        if not is_valid_tenant_key(key):
            raise ValidationError(
                {"key": ["A tenant key is 1 to 255 letters, digits, '.', '_', ':' or '-'."]}
            )
        tenant = Tenant.objects.for_key(key)  # created on first use, like publishing does
        link = access.make_link(request, tenant.pk)
        body = PortalLinkSerializer({"url": link.url, "expires_at": link.expires_at}).data
        return Response(body, status=status.HTTP_200_OK)
