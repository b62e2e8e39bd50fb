"""REST endpoints for bookings, ledger lines and clarification cases."""

import django_filters
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from balance_groups.rest import GroupRefFilter
from balance_groups.selectors import group_get
from core.errors import InvalidInput, NotFound
from core.rest.filters import InstantFilter
from core.rest.pagination import BookingCursorPagination, LineCursorPagination, PagePagination
from core.rest.throttles import BulkRateThrottle
from core.rest.views import TenantViewSet
from transactions.bulk import MAX_ITEMS, bookings_bulk_ingest
from transactions.models import (
    Booking,
    BookingKind,
    BookingStatus,
    ClarificationCase,
    ClarificationReason,
    ClarificationStatus,
    LedgerLine,
)
from transactions.payloads import booking_fields_from_payload
from transactions.selectors import booking_list, clarification_list
from transactions.serializers import (
    BULK_EXAMPLE,
    BookingDetailSerializer,
    BookingSerializer,
    BookingWriteSerializer,
    BulkRequestSerializer,
    BulkResultSerializer,
    ClarificationResolveSerializer,
    ClarificationSerializer,
    LedgerLineSerializer,
)
from transactions.services import booking_create, booking_finalize, booking_reverse, clarification_resolve

BOOKING_ID = OpenApiParameter("id", str, OpenApiParameter.PATH, description="The booking's id (UUID).")
CASE_ID = OpenApiParameter("id", str, OpenApiParameter.PATH, description="The clarification case's id (UUID).")
BOOKING_EXAMPLES = [
    OpenApiExample(
        "One hour of PV for an apartment",
        value={
            "external_id": "pv-apt1-2026-03-29T10:00Z",
            "name": "PV to apartment 1",
            "source": "PV-ROOF",
            "destination": "APT-1",
            "start": "2026-03-29T10:00:00Z",
            "end": "2026-03-29T11:00:00Z",
            "energy_wh": 1500,
            "status": "provisional",
        },
        request_only=True,
    ),
    OpenApiExample(
        "A final quarter-hour from the grid",
        value={
            "source": "GRID-IMPORT",
            "destination": "HEAT-PUMP",
            "start": "2026-03-29T06:00:00Z",
            "end": "2026-03-29T06:15:00Z",
            "energy_wh": 420,
            "status": "final",
        },
        request_only=True,
    ),
]
RESOLVE_EXAMPLES = [
    OpenApiExample(
        "Dismiss with a reason",
        value={"action": "dismiss", "note": "Sent twice by the gateway; the later delivery is the valid one."},
        request_only=True,
    ),
    OpenApiExample(
        "Rebook the payload",
        value={"action": "rebook", "note": "Group validity extended; the booking fits now."},
        request_only=True,
    ),
]


def _uuid_object(queryset, pk, what: str):
    """An object of the tenant-scoped queryset by UUID; anything else is 404, like another tenant's."""
    import uuid

    try:
        key = uuid.UUID(str(pk))
    except ValueError:
        raise NotFound(f"{what} {str(pk)[:80]!r} not found.") from None
    obj = queryset.filter(pk=key).first()
    if obj is None:
        raise NotFound(f"{what} {key} not found.")
    return obj


class BookingFilter(django_filters.FilterSet):
    group = GroupRefFilter(fields=("source", "destination"), label="Source or destination (id or code)")
    source = GroupRefFilter(field_name="source", label="Source group (id, code or metering point)")
    destination = GroupRefFilter(field_name="destination", label="Destination group (id, code or metering point)")
    status = django_filters.ChoiceFilter(choices=BookingStatus.choices, label="Bookings with this status")
    kind = django_filters.ChoiceFilter(choices=BookingKind.choices, label="Bookings of this kind")
    external_id = django_filters.CharFilter(field_name="external_id", label="The booking with exactly this sender's id")
    start = InstantFilter(field_name="end", lookup_expr="gt", label="Bookings overlapping [start, end): end after this")
    end = InstantFilter(
        field_name="start", lookup_expr="lt", label="Bookings overlapping [start, end): start before this"
    )

    class Meta:
        model = Booking
        fields = ["group", "source", "destination", "status", "kind", "external_id", "start", "end"]


@extend_schema_view(
    list=extend_schema(summary="List bookings (newest first)", tags=["bookings"]),
    retrieve=extend_schema(
        summary="Get a booking with its quarter-hour lines",
        tags=["bookings"],
        parameters=[BOOKING_ID],
        responses=BookingDetailSerializer,
    ),
)
class BookingViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    model = Booking
    serializer_class = BookingSerializer
    pagination_class = BookingCursorPagination
    filterset_class = BookingFilter

    def tenant_queryset(self):
        return booking_list(tenant=self.tenant)

    def get_object(self):
        return _uuid_object(self.tenant_queryset().prefetch_related("lines"), self.kwargs["pk"], "Booking")

    def get_serializer_class(self):
        if self.action == "retrieve":
            return BookingDetailSerializer
        return super().get_serializer_class()

    def _detail(self, booking, code=status.HTTP_200_OK):
        booking = self.tenant_queryset().prefetch_related("lines").get(pk=booking.pk)
        return Response(BookingDetailSerializer(booking).data, status=code)

    @extend_schema(
        summary="Book energy from source to destination over [start, end)",
        description="With an `external_id` that exists: identical content returns the stored booking (200), "
        "different content replaces a provisional booking (200) and is refused for a final one (409 "
        "BOOKING_FINAL). A closed quarter-hour of either group: 409 PERIOD_CLOSED, and a clarification case "
        "is recorded.",
        tags=["bookings"],
        request=BookingWriteSerializer,
        responses={201: BookingDetailSerializer, 200: BookingDetailSerializer},
        examples=BOOKING_EXAMPLES,
    )
    def create(self, request, *args, **kwargs):
        payload = request.data
        fields = booking_fields_from_payload(payload)
        for name in ("source", "destination"):
            try:
                fields[name] = group_get(tenant=self.tenant, ref=fields[name])
            except NotFound as error:
                raise InvalidInput.for_field(name, error.detail) from None
        result = booking_create(tenant=self.tenant, actor=self.actor, channel="api", payload=payload, **fields)
        code = status.HTTP_201_CREATED if result.outcome == "created" else status.HTTP_200_OK
        return self._detail(result.booking, code)

    @extend_schema(
        summary="Make a booking final (again on a final one: no change)",
        tags=["bookings"],
        parameters=[BOOKING_ID],
        request=None,
        responses=BookingDetailSerializer,
    )
    @action(detail=True, methods=["post"], url_path="finalize")
    def finalize(self, request, *args, **kwargs):
        booking = booking_finalize(booking=self.get_object(), actor=self.actor)
        return self._detail(booking)

    @extend_schema(
        summary="Correct a final booking with a reversal booking",
        tags=["bookings"],
        parameters=[BOOKING_ID],
        request=None,
        responses={201: BookingDetailSerializer},
    )
    @action(detail=True, methods=["post"], url_path="reverse")
    def reverse(self, request, *args, **kwargs):
        reversal = booking_reverse(booking=self.get_object(), actor=self.actor)
        return self._detail(reversal, status.HTTP_201_CREATED)

    @extend_schema(
        summary=f"Store up to {MAX_ITEMS} bookings in one request",
        description="Every item has the shape of `POST /api/v1/bookings/` and the same rules. Valid items are "
        "stored even when others are refused; refused items are listed with their index and error code, and "
        "those refused for a closed period (or a group not valid then) become clarification cases. "
        "`?dry_run=true` validates and reports without storing anything. Throttled in its own scope (`bulk`).",
        tags=["bookings"],
        request=BulkRequestSerializer,
        responses=BulkResultSerializer,
        parameters=[
            OpenApiParameter("dry_run", bool, OpenApiParameter.QUERY, description="Validate only; store nothing.")
        ],
        examples=[OpenApiExample("Two readings", value=BULK_EXAMPLE, request_only=True)],
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="bulk",
        throttle_classes=[BulkRateThrottle],
        filter_backends=[],
        pagination_class=None,
    )
    def bulk(self, request, *args, **kwargs):
        body = request.data
        if not isinstance(body, dict) or set(body) != {"bookings"}:
            raise InvalidInput.for_field("bookings", 'Send {"bookings": [...]} and nothing else.')
        dry_run = request.query_params.get("dry_run", "false").lower() in ("1", "true", "yes")
        result = bookings_bulk_ingest(
            tenant=self.tenant, actor=self.actor, items=body["bookings"], channel="bulk", dry_run=dry_run
        )
        return Response(
            {
                "created": result.created,
                "replaced": result.replaced,
                "unchanged": result.unchanged,
                "rejected": result.rejected,
            }
        )


class LedgerLineFilter(django_filters.FilterSet):
    booking = django_filters.UUIDFilter(field_name="booking_id", label="Lines of this booking (id)")
    group = GroupRefFilter(fields=("source", "destination"), label="Source or destination (id or code)")
    source = GroupRefFilter(field_name="source", label="Source group (id, code or metering point)")
    destination = GroupRefFilter(field_name="destination", label="Destination group (id, code or metering point)")
    status = django_filters.ChoiceFilter(
        choices=BookingStatus.choices, method="filter_status", label="Lines with this status"
    )
    start = InstantFilter(field_name="quarter_start", lookup_expr="gte", label="Quarter-hours from (inclusive)")
    end = InstantFilter(field_name="quarter_start", lookup_expr="lt", label="Quarter-hours before (exclusive)")

    class Meta:
        model = LedgerLine
        fields = ["booking", "group", "source", "destination", "status", "start", "end"]

    def filter_status(self, queryset, name, value):
        return queryset.filter(is_final=value == BookingStatus.FINAL)


@extend_schema_view(
    list=extend_schema(summary="List ledger lines (one per booking and quarter-hour)", tags=["bookings"]),
)
class LedgerLineViewSet(mixins.ListModelMixin, TenantViewSet):
    model = LedgerLine
    serializer_class = LedgerLineSerializer
    pagination_class = LineCursorPagination
    filterset_class = LedgerLineFilter

    def tenant_queryset(self):
        return LedgerLine.objects.filter(tenant=self.tenant)


class ClarificationFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=ClarificationStatus.choices, label="Cases with this status")
    reason = django_filters.ChoiceFilter(choices=ClarificationReason.choices, label="Cases with this reason")
    channel = django_filters.CharFilter(
        field_name="channel", label="Cases from this channel: api, bulk, csv, admin, mscons, …"
    )

    class Meta:
        model = ClarificationCase
        fields = ["status", "reason", "channel"]


@extend_schema_view(
    list=extend_schema(summary="List clarification cases (newest first)", tags=["clarifications"]),
    retrieve=extend_schema(summary="Get a clarification case", tags=["clarifications"], parameters=[CASE_ID]),
)
class ClarificationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    model = ClarificationCase
    serializer_class = ClarificationSerializer
    pagination_class = PagePagination
    filterset_class = ClarificationFilter

    def tenant_queryset(self):
        return clarification_list(tenant=self.tenant).order_by("-created_at", "id")

    def get_object(self):
        return _uuid_object(self.tenant_queryset(), self.kwargs["pk"], "Clarification case")

    @extend_schema(
        summary="Resolve a case: rebook its payload (exactly one booking) or dismiss it with a note",
        tags=["clarifications"],
        parameters=[CASE_ID],
        request=ClarificationResolveSerializer,
        responses=ClarificationSerializer,
        examples=RESOLVE_EXAMPLES,
    )
    @action(detail=True, methods=["post"], url_path="resolve")
    def resolve(self, request, *args, **kwargs):
        case = self.get_object()
        serializer = ClarificationResolveSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        case = clarification_resolve(
            case=case,
            actor=self.actor,
            action=serializer.validated_data["action"],
            note=serializer.validated_data["note"],
        )
        return Response(ClarificationSerializer(case).data)
