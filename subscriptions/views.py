"""The subscription registry's API. Authentication comes from the host's DRF defaults (token,
session and basic in the reference project); permissions are declared here because a host whose
default is `AllowAny` must not open subscriptions to the world."""

from __future__ import annotations

from django.db import transaction
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema_view
from rest_framework import exceptions, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer, ValidationError

from webhooks_core.access import TenantModelPermissions, read_scope, write_scope
from webhooks_core.api import APIDefaults, extend_schema
from webhooks_core.throttling import TenantThrottle, UserThrottle

from . import services
from .models import EventType, Subscription, default_tenant_key, is_valid_tenant_key
from .serializers import (
    EventTypeSerializer,
    RotatedSecretSerializer,
    RotateSecretSerializer,
    SubscriptionCreateSerializer,
    SubscriptionSerializer,
)


class SubscriptionLimitExceeded(exceptions.PermissionDenied):
    """403: the tenant is at its subscription limit; nothing was created."""

    default_code = "subscription_limit"


class EventTypeViewSet(APIDefaults, viewsets.ModelViewSet):
    """The catalog of event types, shared by every tenant: everyone signed in reads it; changing
    it needs the model permissions (`add_eventtype`...), never `is_staff` alone."""

    queryset = EventType.objects.prefetch_related("versions")
    serializer_class = EventTypeSerializer
    permission_classes = [permissions.DjangoModelPermissions]
    lookup_field = "name"
    # Any name but a slash or U+0000 (which PostgreSQL cannot even compare): a NUL in the
    # URL is then a 404 like any unknown name, not a database error.
    lookup_value_regex = r"[^/\x00]+"
    http_method_names = ["get", "post", "patch", "put", "delete", "head", "options"]

    def perform_destroy(self, instance: EventType) -> None:
        if instance.declared:
            # It would be back after the next migrate; the code is where it goes away.
            raise ValidationError(
                {"name": ["This event type is declared in code; remove it there."]}
            )
        instance.delete()


@extend_schema_view(
    create=extend_schema(
        request=SubscriptionCreateSerializer,
        responses={201: SubscriptionCreateSerializer},
        description="Create a subscription. The response carries the signing secret: the only "
        "time it is shown.",
    ),
    retrieve=extend_schema(responses={200: SubscriptionSerializer, 404: None}),
)
class SubscriptionViewSet(APIDefaults, viewsets.ModelViewSet):
    """Subscriptions: tenant users see and manage their tenant's; users with the model
    permissions act on every tenant's (webhooks_core.access). Another tenant's subscription
    answers 404, as if it did not exist."""

    # Only for schema generation (the model behind `{id}`); requests use get_queryset().
    queryset = Subscription.objects.none()
    serializer_class = SubscriptionSerializer
    permission_classes = [TenantModelPermissions]
    tenant_model = Subscription
    tenant_action_perms = {"rotate_secret": ("change",)}
    # Ids are UUIDs: other words under /subscriptions/ (the pipeline's `simulate/`) are
    # routed elsewhere, and anything else is a 404 as before.
    lookup_value_regex = r"[0-9a-fA-F-]{32,36}"
    throttle_classes = [UserThrottle, TenantThrottle]
    throttle_scopes = {"create": "create"}

    def get_queryset(self) -> QuerySet[Subscription]:
        scope = read_scope(self.request, Subscription)
        return scope.filter(Subscription.objects.all()).order_by("-created_at")

    def throttle_tenant(self, request: Request) -> str | None:
        """The tenant a creation counts against: the one it names if the user may choose,
        else their own. A tenant user naming another tenant cannot spend that one's budget."""
        scope = write_scope(request, self)
        named = request.data.get("tenant") if isinstance(request.data, dict) else None
        if scope.all_tenants and is_valid_tenant_key(named):
            return named
        return scope.tenant or default_tenant_key()

    def get_serializer_context(self) -> dict:
        context = super().get_serializer_context()
        if getattr(self, "request", None) is not None and self.request.user.is_authenticated:
            context["tenant_scope"] = write_scope(self.request, self)
        return context

    def get_serializer_class(self) -> type[BaseSerializer]:
        if self.action == "create":
            return SubscriptionCreateSerializer
        if self.action == "rotate_secret":
            return RotateSecretSerializer
        return SubscriptionSerializer

    def perform_create(self, serializer: BaseSerializer) -> None:
        scope = write_scope(self.request, self)
        key = serializer.validated_data.get("tenant_id") or scope.tenant or default_tenant_key()
        with transaction.atomic():
            try:
                tenant = services.tenant_for_new_subscription(key)
            except services.SubscriptionLimitReached as exc:
                raise SubscriptionLimitExceeded(str(exc)) from exc
            serializer.save(owner=self.request.user, tenant_id=tenant.pk)

    def update(self, request: Request, *args: object, **kwargs: object) -> Response:
        """PATCH/PUT; an answer that enabled the endpoint again says what it missed while
        disabled (`held_while_disabled`) and how to replay it (`replay`)."""
        self._reenabled: dict = {}
        response = super().update(request, *args, **kwargs)
        if self._reenabled:
            response.data = {**response.data, **self._reenabled}
        return response

    def perform_update(self, serializer: BaseSerializer) -> None:
        serializer.save()
        self._reenabled = getattr(serializer, "reenabled", {})

    def perform_destroy(self, instance: Subscription) -> None:
        # Its history stays until retention prunes it; secrets and header values go now.
        services.delete_subscription(instance)

    @extend_schema(
        request=RotateSecretSerializer,
        responses={
            200: RotatedSecretSerializer,
            400: OpenApiResponse(description="The secret given is malformed or unchanged."),
            404: None,
        },
        description="Replace the signing secret (and the v1a key). The old ones keep signing "
        "beside the new ones for `overlap` seconds (0 to 604800; default "
        "`SECRET_ROTATION_OVERLAP`, 24 h).",
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request: Request, pk: str | None = None) -> Response:
        subscription = self.get_object()
        serializer = RotateSecretSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            secret = services.rotate_secret(
                subscription,
                serializer.validated_data.get("secret"),
                overlap=serializer.validated_data.get("overlap"),
            )
        except ValueError as exc:
            raise ValidationError({"secret": [str(exc)]}) from exc
        body = RotatedSecretSerializer(
            {
                "id": subscription.pk,
                "secret": secret,
                "previous_secret_expires_at": subscription.previous_secret_expires_at,
                "public_key": subscription.public_key,
            }
        ).data
        return Response(body, status=status.HTTP_200_OK)
