from __future__ import annotations

from rest_framework import permissions, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from .models import EventType, Subscription
from .serializers import EventTypeSerializer, SubscriptionCreatedSerializer, SubscriptionSerializer


class IsStaffOrReadOnly(permissions.BasePermission):
    def has_permission(self, request: Request, view: object) -> bool:
        return request.method in permissions.SAFE_METHODS or bool(request.user.is_staff)


class EventTypeViewSet(viewsets.ModelViewSet):
    queryset = EventType.objects.all()
    serializer_class = EventTypeSerializer
    permission_classes = [permissions.IsAuthenticated, IsStaffOrReadOnly]
    lookup_field = "name"
    lookup_value_regex = r"[^/]+"
    http_method_names = ["get", "post", "patch", "put", "delete", "head", "options"]


class SubscriptionViewSet(viewsets.ModelViewSet):
    serializer_class = SubscriptionSerializer
    permission_classes = [permissions.IsAuthenticated]

    def get_queryset(self):  # type: ignore[override]
        return Subscription.objects.visible_to(self.request.user).order_by("-created_at")

    def create(self, request: Request, *args: object, **kwargs: object) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        subscription = serializer.save(owner=request.user)
        return Response(SubscriptionCreatedSerializer(subscription).data, status=201)
