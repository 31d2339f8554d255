"""POST /api/tenants/{key}/portal-link/: a signed, expiring, single-use link to one tenant's
portal, for the host's backend (the way Svix's app-portal access works); and
POST /api/tenants/{key}/portal-sessions/revoke/: end that tenant's portal sessions and links."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse
from rest_framework import permissions, serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from subscriptions.models import Subscription, Tenant, is_valid_tenant_key
from webhooks_core import wire
from webhooks_core.access import has_any_perm, model_perms
from webhooks_core.api import APIDefaults, extend_schema

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
    `webhooks_portal.api_urls` to the one API include (`webhooks_core.apidocs.register_api`)."""

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
        description="A signed link that opens the portal for this tenant alone, once. It can "
        "be opened until `expires_at` (`WEBHOOKS['PORTAL_LINK_MAX_AGE']`, default 1 hour) and "
        "starts a portal session of `PORTAL_SESSION_AGE` seconds; opened a second time it "
        "starts nothing. Call it from your backend each time you show the portal; never from "
        "a browser with your API token.",
    )
    def post(self, request: Request, key: str) -> Response:
        valid_key(key)
        tenant = Tenant.objects.for_key(key)  # created on first use, like publishing does
        link = access.make_link(request, tenant.pk)
        body = PortalLinkSerializer({"url": link.url, "expires_at": link.expires_at}).data
        return Response(body, status=status.HTTP_200_OK)


def valid_key(key: str) -> None:
    """Raise ValidationError (400, naming `key`) unless `key` is a well-formed tenant key."""
    if not is_valid_tenant_key(key):
        raise ValidationError(
            {"key": ["A tenant key is 1 to 255 letters, digits, '.', '_', ':' or '-'."]}
        )


class RevokedSerializer(serializers.Serializer):
    revoked = serializers.IntegerField(
        help_text="How many unused links and open portal sessions were ended."
    )


class PortalRevokeView(APIDefaults, APIView):
    """Ends a tenant's open portal sessions and makes its unused links unusable, at once (a
    customer's user left, a link leaked). The same as `webhooks_portal.access.revoke(key)` and the
    tenant admin's action."""

    permission_classes = [CanMakePortalLinks]

    @extend_schema(
        operation_id="tenants_portal_sessions_revoke",
        tags=["tenants"],
        request=None,
        responses={
            200: RevokedSerializer,
            400: OpenApiResponse(description="Not a valid tenant key."),
            403: OpenApiResponse(
                description="Needs the webhook_subscriptions.change_subscription permission."
            ),
            404: OpenApiResponse(description="No such tenant."),
        },
        description="Ends every open portal session of this tenant and every link made for "
        "it that was not used yet. Browsers in its portal see the no-access page on their "
        "next request.",
    )
    def post(self, request: Request, key: str) -> Response:
        valid_key(key)
        if not Tenant.objects.filter(pk=key).exists():
            raise NotFound()
        body = RevokedSerializer({"revoked": access.revoke(key)}).data
        return Response(body, status=status.HTTP_200_OK)
