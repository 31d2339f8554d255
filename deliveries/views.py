from __future__ import annotations

import logging
from typing import Any

from django.db import DatabaseError
from django.db.models import Prefetch, QuerySet
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView

from subscriptions.models import Subscription, default_tenant_key, is_valid_tenant_key
from webhooks_core.access import READ, TenantModelPermissions, read_scope, write_scope
from webhooks_core.api import APIDefaults, extend_schema
from webhooks_core.keyset import CursorPagination
from webhooks_core.tenancy import resolve_tenant
from webhooks_core.throttling import TenantThrottle, UserThrottle

from .conf import webhook_settings
from .models import BulkRetrySource, Delivery, Event
from .permissions import CanPublish
from .serializers import (
    BulkRetryAnswerSerializer,
    BulkRetryRequestSerializer,
    DeliveryDetailSerializer,
    DeliverySearchSerializer,
    DeliverySerializer,
    EgressIPsSerializer,
    EventDetailSerializer,
    EventSerializer,
    PublishedSerializer,
    PublishSerializer,
    ReplayQueuedSerializer,
    ReplayRequestSerializer,
    RetryQueuedSerializer,
    SimulationRequestSerializer,
    SimulationSerializer,
    SkippedSerializer,
    VersionPreviewQuerySerializer,
    VersionPreviewSerializer,
    search_input,
)
from .services import (
    IdempotencyConflict,
    PayloadTooLarge,
    Publication,
    PublishError,
    expected_counts,
    ordering,
    publish_event,
    replay,
)
from .services.bulk_retry import BulkRetryError, bulk_retry
from .services.previews import PreviewUnavailable, version_preview
from .services.probes import SubscriptionInactive, send_test_event
from .services.simulation import simulate

logger = logging.getLogger(__name__)


def published_body(publication: Publication) -> dict:
    """The 202 answer to a publish. The event is committed by now: whatever fails from here on
    must not turn into an error, or the publisher would send it again (a second event without
    an idempotency key). The sweep fans out an event whose fan-out could not run."""
    event = publication.event
    count, skipped = publication.deliveries, publication.skipped
    if count is None or skipped is None:  # the fan-out did not run (yet): what it will create
        try:
            count, skipped = expected_counts(event)
        except DatabaseError:
            logger.warning("event %s stored; its deliveries could not be counted", event.pk)
            count = skipped = None
    return PublishedSerializer(
        {
            "id": event.id,
            "tenant": event.tenant_id,
            "type": event.type,
            "created_at": event.created_at,
            "deliveries": count,
            "skipped": skipped,
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
    """The event log and publishing. Publishing needs `deliveries.add_event`; a tenant's users
    read its events and broadcasts (with their own deliveries only)."""

    # Only for schema generation (the model behind `{id}`); requests use get_queryset().
    queryset = Event.objects.none()
    # History grows without bound: keyset pages on (created_at, id), no count (keyset.py).
    pagination_class = CursorPagination
    permission_classes = [CanPublish]
    tenant_model = Event
    throttle_classes = [UserThrottle, TenantThrottle]
    throttle_scopes = {"create": "publish"}

    def throttle_tenant(self, request: Request) -> str:
        """The tenant a publish counts against: the one its event belongs to."""
        named = request.data.get("tenant") if isinstance(request.data, dict) else None
        if isinstance(named, str) and is_valid_tenant_key(named):
            return named
        return resolve_tenant(request) or default_tenant_key()

    def get_queryset(self) -> QuerySet[Event]:
        queryset = read_scope(self.request, Event).filter(Event.objects.order_by("-created_at"))
        if self.action == "retrieve":
            # A broadcast reaches every tenant: each sees its own deliveries of it only.
            deliveries = read_scope(self.request, Delivery).filter(
                Delivery.objects.select_related("event", "subscription")
            )
            queryset = queryset.prefetch_related(Prefetch("deliveries", queryset=deliveries))
        return queryset

    def get_serializer_class(self) -> type[BaseSerializer[Any]]:
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
        data = serializer.validated_data
        try:
            publication = publish_event(
                data["type"],
                data["data"],
                tenant=data.get("tenant") or resolve_tenant(request),
                idempotency_key=data.get("idempotency_key"),
                ordering_key=data.get("ordering_key"),
                broadcast=data["broadcast"],
                channels=data.get("channels"),
            )
        except PayloadTooLarge as exc:
            return Response(
                {exc.field: [exc.message]}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
            )
        except IdempotencyConflict as exc:
            # IETF idempotency-key draft, section 2.7: a key reused for another payload.
            return Response({exc.field: [exc.message]}, status=status.HTTP_422_UNPROCESSABLE_ENTITY)
        except PublishError as exc:
            raise ValidationError({exc.field: [exc.message]}) from exc
        return Response(published_body(publication), status=status.HTTP_202_ACCEPTED)


class DeliveryViewSet(APIDefaults, viewsets.ReadOnlyModelViewSet):
    """Deliveries to a tenant's endpoints: its users see, search and retry them;
    `view_delivery` / `change_delivery` reach every tenant's."""

    # Only for schema generation (the model behind `{id}`); requests use get_queryset().
    queryset = Delivery.objects.none()
    # History grows without bound: keyset pages on (created_at, id), no count (keyset.py).
    pagination_class = CursorPagination
    permission_classes = [TenantModelPermissions]
    tenant_model = Delivery
    tenant_action_perms = {"retry": ("change",), "skip": ("change",), "bulk_retry": ("change",)}
    throttle_classes = [UserThrottle, TenantThrottle]
    throttle_scopes = {"retry": "retry", "skip": "retry", "bulk_retry": "bulk_retry"}

    def throttle_tenant(self, request: Request) -> str | None:
        """A retry counts against the tenant of the delivery's endpoint (none for an id that
        cannot exist: the request answers 404 after the per-user budget); a bulk retry against
        the user's tenant, or the tenant it names."""
        if self.action == "bulk_retry":
            named = request.data.get("tenant") if isinstance(request.data, dict) else None
            if isinstance(named, str) and is_valid_tenant_key(named):
                return named
            return resolve_tenant(request)
        pk = str(self.kwargs.get("pk", ""))
        if not pk.isascii() or not pk.isdigit() or len(pk) > 18:
            return None
        found = read_scope(request, Delivery).filter(Delivery.objects.filter(pk=int(pk)))
        return found.values_list("subscription__tenant_id", flat=True).first()

    def get_serializer_class(self) -> type[BaseSerializer[Any]]:
        if self.action == "bulk_retry":
            return BulkRetryRequestSerializer
        return DeliveryDetailSerializer if self.action == "retrieve" else DeliverySerializer

    def get_queryset(self) -> QuerySet[Delivery]:
        queryset = read_scope(self.request, Delivery).filter(
            Delivery.objects.select_related("event", "subscription")
        )
        if self.action == "retrieve":
            return queryset.prefetch_related("attempt_set")
        scope = read_scope(self.request, Delivery)
        filters = DeliverySearchSerializer(
            data=search_input(self.request.query_params),
            context={"all_tenants": scope.all_tenants, "tenant": scope.tenant},
        )
        filters.is_valid(raise_exception=True)
        # The paginator orders by (-created_at, -id): the search indexes end with created_at.
        return filters.search().apply(queryset)

    @extend_schema(parameters=[DeliverySearchSerializer])
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """The log, newest first, in keyset pages, narrowed by the search parameters."""
        return super().list(request, *args, **kwargs)

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

    @extend_schema(request=None, responses={200: SkippedSerializer})
    @action(detail=True, methods=["post"])
    def skip(self, request: Request, pk: str | None = None) -> Response:
        """Discard a waiting delivery of an ordering key for good and release the next one of
        its key (the head of a blocked key); 409 if it has no key or is not waiting."""
        delivery = self.get_object()
        try:
            released = ordering.skip(delivery, request.user.get_username() or "the API")
        except ordering.SkipError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(SkippedSerializer({"id": delivery.pk, "released": released}).data)

    @extend_schema(
        operation_id="deliveries_bulk_retry",
        request=BulkRetryRequestSerializer,
        responses={200: BulkRetryAnswerSerializer, 202: BulkRetryAnswerSerializer},
    )
    @action(detail=False, methods=["post"], url_path="retry", url_name="bulk-retry")
    def bulk_retry(self, request: Request) -> Response:
        """Retry every delivery matching the search in the body (default statuses: failed,
        discarded, skipped); `dry_run` only counts. Recorded; at most `BULK_RETRY_MAX`."""
        scope = write_scope(request, self)
        serializer = BulkRetryRequestSerializer(
            data=request.data if isinstance(request.data, dict) else {},
            context={"all_tenants": scope.all_tenants, "tenant": scope.tenant},
        )
        serializer.is_valid(raise_exception=True)
        dry_run = serializer.validated_data["dry_run"]
        try:
            result = bulk_retry(
                scope.filter(Delivery.objects.all()),
                serializer.search(),
                user=request.user,
                tenant=None if scope.all_tenants else scope.tenant,
                source=BulkRetrySource.API,
                dry_run=dry_run,
            )
        except BulkRetryError as exc:
            raise ValidationError({exc.field: [exc.message]}) from exc
        if dry_run:
            return Response(BulkRetryAnswerSerializer({"count": result.count}).data)
        body = BulkRetryAnswerSerializer({"count": result.count, "queued": result.queued}).data
        return Response(body, status=status.HTTP_202_ACCEPTED)


class SubscriptionActionView(APIDefaults, GenericAPIView):
    """Base of the pipeline's actions on one subscription (test, replay): tenant access as the
    subscription API, and throttled per user and per the subscription's tenant."""

    permission_classes = [TenantModelPermissions]
    tenant_model = Subscription
    # Acting on an endpoint is changing it, as the admin's actions require.
    tenant_action_perms = {"post": ("change",)}
    throttle_classes = [UserThrottle, TenantThrottle]
    queryset = Subscription.objects.none()  # schema generation only

    def get_queryset(self) -> QuerySet[Subscription]:
        return read_scope(self.request, Subscription).filter(Subscription.objects.all())

    def throttle_tenant(self, request: Request) -> str | None:
        found = self.get_queryset().filter(pk=self.kwargs["pk"])
        return found.values_list("tenant_id", flat=True).first()


class SubscriptionTestView(SubscriptionActionView):
    """POST /api/subscriptions/{id}/test/: lives here, not in the subscriptions app, because
    sending belongs to the pipeline and the registry never imports it."""

    serializer_class = PublishedSerializer
    throttle_scope = "test"

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


class SubscriptionReplayView(SubscriptionActionView):
    """Re-send a subscription's deliveries created in a time range (default: failed and
    discarded). Lives here, not in the subscriptions app, because it drives the pipeline."""

    serializer_class = ReplayRequestSerializer
    throttle_scope = "replay"

    @extend_schema(request=ReplayRequestSerializer, responses={202: ReplayQueuedSerializer})
    def post(self, request: Request, pk: str) -> Response:
        subscription = self.get_object()
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


class SubscriptionSimulateView(APIDefaults, GenericAPIView):
    """POST /api/subscriptions/simulate/: which of a tenant's recent events a draft
    subscription (types, filter, channels) would have received. Lives here, not in the
    subscriptions app, because it reads the event log, which the registry never imports.

    Reading events is what it needs: a tenant user reads their tenant's; `view_event` (or
    `change_event`) lets a user name any `tenant`. Throttled per user and per tenant (scope
    "simulate"): every call reads up to 100 events' data.
    """

    permission_classes = [TenantModelPermissions]
    tenant_model = Event
    tenant_action_perms = {"post": READ}
    throttle_classes = [UserThrottle, TenantThrottle]
    throttle_scope = "simulate"
    serializer_class = SimulationRequestSerializer

    def throttle_tenant(self, request: Request) -> str | None:
        named = request.data.get("tenant") if isinstance(request.data, dict) else None
        scope = read_scope(request, Event)
        if isinstance(named, str) and scope.all_tenants and is_valid_tenant_key(named):
            return named
        return scope.tenant or default_tenant_key()

    @extend_schema(
        operation_id="subscriptions_simulate",
        tags=["subscriptions"],
        request=SimulationRequestSerializer,
        responses={200: SimulationSerializer, 400: None, 403: None},
    )
    def post(self, request: Request) -> Response:
        serializer = SimulationRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        scope = read_scope(request, Event)
        named = data.get("tenant")
        if named is not None and not scope.all_tenants and named != scope.tenant:
            raise ValidationError(
                {"tenant": ["Only users allowed to act across tenants choose the tenant."]}
            )
        tenant = named or scope.tenant or default_tenant_key()
        result = simulate(
            tenant,
            event_types=data["event_types"],
            filter=data.get("filter"),
            channels=data.get("channels"),
            limit=data["limit"],
        )
        body = {
            "tenant": tenant,
            "examined": result.examined,
            "count": result.count,
            "events": result.events,
        }
        return Response(SimulationSerializer(body).data)


class SubscriptionVersionPreviewView(APIDefaults, GenericAPIView):
    """GET /api/subscriptions/{id}/versions/preview/?type=&version=: the body this subscription
    would receive in another version of a declared type, rendered from its last real event of
    that type. Lives here because it reads the event log; reading needs what reading the
    subscription needs."""

    permission_classes = [TenantModelPermissions]
    tenant_model = Subscription
    queryset = Subscription.objects.none()  # schema generation only

    def get_queryset(self) -> QuerySet[Subscription]:
        return read_scope(self.request, Subscription).filter(Subscription.objects.all())

    @extend_schema(
        operation_id="subscriptions_versions_preview",
        tags=["subscriptions"],
        parameters=[VersionPreviewQuerySerializer],
        responses={200: VersionPreviewSerializer, 400: None, 404: None},
    )
    def get(self, request: Request, pk: object) -> Response:
        subscription = self.get_object()
        query = VersionPreviewQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        try:
            preview = version_preview(
                subscription, query.validated_data["type"], query.validated_data["version"]
            )
        except PreviewUnavailable as exc:
            raise ValidationError({exc.field: [exc.message]}) from exc
        body = {
            "type": preview.name,
            "version": preview.version,
            "source": preview.source,
            "event": preview.event.pk if preview.event is not None else None,
            "body": preview.body,
        }
        return Response(VersionPreviewSerializer(body).data)


class EgressIPsView(APIDefaults, APIView):
    """`GET /api/egress-ips/`: the addresses deliveries leave from (`WEBHOOKS["EGRESS_IPS"]`),
    for receivers' allow-lists. Any signed-in user may read it; strangers get 401/403."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: EgressIPsSerializer})
    def get(self, request: Request) -> Response:
        return Response(EgressIPsSerializer({"ips": webhook_settings.egress_ips}).data)
