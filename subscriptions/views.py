"""The subscription registry's API. Authentication comes from the host's DRF defaults (token,
session and basic in the reference project); permissions are declared here because a host whose
default is `AllowAny` must not open subscriptions to the world."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema_view
from rest_framework import permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer, ValidationError

from . import services
from .api import APIDefaults, extend_schema
from .models import EventType, Subscription
from .serializers import (
    EventTypeSerializer,
    RotatedSecretSerializer,
    RotateSecretSerializer,
    SubscriptionCreateSerializer,
    SubscriptionSerializer,
)


class IsStaffOrReadOnly(permissions.BasePermission):
    def has_permission(self, request: Request, view: object) -> bool:
        return request.method in permissions.SAFE_METHODS or bool(request.user.is_staff)


class EventTypeViewSet(APIDefaults, viewsets.ModelViewSet):
    """The catalog of event types: everyone signed in reads it, staff change it."""

    queryset = EventType.objects.all()
    serializer_class = EventTypeSerializer
    permission_classes = [permissions.IsAuthenticated, IsStaffOrReadOnly]
    lookup_field = "name"
    # Any name but a slash or U+0000 (which PostgreSQL cannot even compare): a NUL in the
    # URL is then a 404 like any unknown name, not a database error.
    lookup_value_regex = r"[^/\x00]+"
    http_method_names = ["get", "post", "patch", "put", "delete", "head", "options"]


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
    """Subscriptions: users see and change their own, staff see all. Another user's
    subscription answers 404, as if it did not exist."""

    # Only for schema generation (the model behind `{id}`); requests use get_queryset().
    queryset = Subscription.objects.none()
    serializer_class = SubscriptionSerializer
    permission_classes = [permissions.IsAuthenticated]

    def get_queryset(self) -> QuerySet[Subscription]:
        return Subscription.objects.visible_to(self.request.user).order_by("-created_at")

    def get_serializer_class(self) -> type[BaseSerializer]:
        if self.action == "create":
            return SubscriptionCreateSerializer
        if self.action == "rotate_secret":
            return RotateSecretSerializer
        return SubscriptionSerializer

    def perform_create(self, serializer: BaseSerializer) -> None:
        serializer.save(owner=self.request.user)

    @extend_schema(
        request=RotateSecretSerializer,
        responses={
            200: RotatedSecretSerializer,
            400: OpenApiResponse(description="The secret given is malformed or unchanged."),
            404: None,
        },
        description="Replace the signing secret. The old one keeps signing beside the new one "
        "for the rotation overlap (`SECRET_ROTATION_OVERLAP`, default 24 h).",
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request: Request, pk: str | None = None) -> Response:
        subscription = self.get_object()
        serializer = RotateSecretSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            secret = services.rotate_secret(subscription, serializer.validated_data.get("secret"))
        except ValueError as exc:
            raise ValidationError({"secret": [str(exc)]}) from exc
        body = RotatedSecretSerializer(
            {
                "id": subscription.pk,
                "secret": secret,
                "previous_secret_expires_at": subscription.previous_secret_expires_at,
            }
        ).data
        return Response(body, status=status.HTTP_200_OK)
