from __future__ import annotations

import logging

from django.db import DatabaseError
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import generics, mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from subscriptions.api import APIDefaults, extend_schema
from subscriptions.models import Subscription

from .models import Delivery, Event
from .permissions import CanPublish
from .serializers import (
    DeliveryDetailSerializer,
    DeliveryFilterSerializer,
    DeliverySerializer,
    EventDetailSerializer,
    EventSerializer,
    PublishedSerializer,
    PublishSerializer,
    ReplayQueuedSerializer,
    ReplayRequestSerializer,
    RetryQueuedSerializer,
)
from .services import (
    PayloadTooLarge,
    Publication,
    PublishError,
    expected_deliveries,
    publish_event,
    replay,
)
from .services.probes import SubscriptionInactive, send_test_event

logger = logging.getLogger(__name__)


def published_body(publication: Publication) -> dict:
    """The 202 answer to a publish. The event is committed by now: whatever fails from here on
    must not turn into an error, or the publisher would send it again (a second event without
    an idempotency key). The sweep fans out an event whose fan-out could not run."""
    event = publication.event
    count = publication.deliveries
    if count is None:  # the fan-out did not run (yet): count what it will create
        try:
            count = expected_deliveries(event)
        except DatabaseError:
            logger.warning("event %s stored; its deliveries could not be counted", event.pk)
            count = None
    return PublishedSerializer(
        {
            "id": event.id,
            "type": event.type,
            "created_at": event.created_at,
            "deliveries": count,
            "duplicate": not publication.created,
        }
    ).data


class EventViewSet(
    APIDefaults,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    permission_classes = [CanPublish]

    def get_queryset(self) -> QuerySet[Event]:
        queryset = Event.objects.order_by("-created_at")
        if self.action == "retrieve":
            queryset = queryset.prefetch_related("deliveries__event")
        return queryset

    def get_serializer_class(self):  # type: ignore[override]
        if self.action == "create":
            return PublishSerializer
        return EventDetailSerializer if self.action == "retrieve" else EventSerializer

    @extend_schema(
        request=PublishSerializer,
        responses={202: PublishedSerializer},
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER)],
    )
    def create(self, request: Request, *args: object, **kwargs: object) -> Response:
        serializer = PublishSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        try:
            publication = publish_event(
                serializer.validated_data["type"],
                serializer.validated_data["data"],
                idempotency_key=serializer.validated_data.get("idempotency_key"),
            )
        except PayloadTooLarge as exc:
            return Response(
                {exc.field: [exc.message]}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
            )
        except PublishError as exc:
            raise ValidationError({exc.field: [exc.message]}) from exc
        return Response(published_body(publication), status=status.HTTP_202_ACCEPTED)


class DeliveryViewSet(APIDefaults, viewsets.ReadOnlyModelViewSet):
    # Only for schema generation (the model behind `{id}`); requests use get_queryset().
    queryset = Delivery.objects.none()
    permission_classes = [permissions.IsAuthenticated]

    def get_serializer_class(self):  # type: ignore[override]
        return DeliveryDetailSerializer if self.action == "retrieve" else DeliverySerializer

    def get_queryset(self) -> QuerySet[Delivery]:
        queryset = Delivery.objects.visible_to(self.request.user).select_related("event")
        if self.action == "retrieve":
            return queryset.prefetch_related("attempt_set")
        filters = DeliveryFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        queryset = queryset.filter(**filters.lookups())
        return queryset.order_by("-created_at")

    @extend_schema(request=None, responses={202: RetryQueuedSerializer})
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: str | None = None) -> Response:
        """Send the delivery again now: one more attempt, same `webhook-id`."""
        delivery = self.get_object()
        try:
            attempt = replay.redeliver_one(delivery)
        except replay.ReplayError as exc:
            return Response({"detail": exc.message}, status=status.HTTP_409_CONFLICT)
        body = {"id": delivery.pk, "queued": True, "attempt": attempt}
        return Response(RetryQueuedSerializer(body).data, status=status.HTTP_202_ACCEPTED)


class SubscriptionTestView(APIDefaults, generics.GenericAPIView):
    """POST /api/subscriptions/{id}/test/: lives here, not in the subscriptions app, because
    sending belongs to the pipeline and the registry never imports it."""

    permission_classes = [permissions.IsAuthenticated]
    serializer_class = PublishedSerializer
    queryset = Subscription.objects.none()  # schema generation only

    def get_queryset(self) -> QuerySet[Subscription]:
        return Subscription.objects.visible_to(self.request.user)

    @extend_schema(
        operation_id="subscriptions_test_create",
        tags=["subscriptions"],
        request=None,
        responses={
            202: PublishedSerializer,
            404: None,
            409: OpenApiResponse(description="The subscription is disabled."),
        },
        description="Send a signed `webhook.test` event to this subscription only. It is "
        "recorded as an event with one delivery, like any other.",
    )
    def post(self, request: Request, pk: object) -> Response:
        subscription = self.get_object()
        try:
            publication = send_test_event(subscription)
        except SubscriptionInactive as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(published_body(publication), status=status.HTTP_202_ACCEPTED)


class SubscriptionReplayView(APIDefaults, GenericAPIView):
    """Re-send a subscription's deliveries created in a time range (default: failed and
    discarded). Lives here, not in the subscriptions app, because it drives the pipeline."""

    permission_classes = [permissions.IsAuthenticated]
    serializer_class = ReplayRequestSerializer

    @extend_schema(request=ReplayRequestSerializer, responses={202: ReplayQueuedSerializer})
    def post(self, request: Request, pk: str) -> Response:
        subscription = get_object_or_404(Subscription.objects.visible_to(request.user), pk=pk)
        serializer = ReplayRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            result = replay.start_replay(
                subscription, data["since"], data.get("until"), data.get("status")
            )
        except replay.ReplayUnavailable as exc:
            return Response({"detail": exc.message}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        except replay.ReplayError as exc:
            if exc.field == "non_field_errors":
                return Response({"detail": exc.message}, status=status.HTTP_409_CONFLICT)
            raise ValidationError({exc.field: [exc.message]}) from exc
        body = {
            "subscription": subscription.pk,
            "queued": result.queued,
            "since": result.request.since,
            "until": result.request.until,
            "status": list(result.request.statuses),
        }
        return Response(ReplayQueuedSerializer(body).data, status=status.HTTP_202_ACCEPTED)
