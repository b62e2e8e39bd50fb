"""REST endpoints of the allocation app: measurements (``/api/v1/measurements/``), JSON and MSCONS."""

import django_filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.response import Response

from allocation.measurements import MAX_ITEMS, measurements_ingest
from allocation.models import Measurement, Quality
from allocation.mscons.services import bytes_source, mscons_import
from allocation.selectors import measurement_list
from allocation.serializers import (
    BULK_EXAMPLE,
    MSCONS_EXAMPLE,
    MeasurementBulkRequestSerializer,
    MeasurementBulkResultSerializer,
    MeasurementSerializer,
    MsconsResultSerializer,
)
from balance_groups.rest import GroupRefFilter
from core.errors import InvalidInput
from core.rest.filters import InstantFilter
from core.rest.pagination import CursorPagination
from core.rest.parsers import EdifactParser, EdifactTextParser
from core.rest.throttles import BulkRateThrottle
from core.rest.views import TenantViewSet
from core.status import Status

TRUE, FALSE = frozenset({"1", "true", "yes"}), frozenset({"0", "false", "no"})
DRY_RUN = OpenApiParameter(
    "dry_run", bool, OpenApiParameter.QUERY, description="Validate and report only; store nothing."
)


def _flag(request, name: str) -> bool:
    """A boolean query parameter; anything but true/false (1/0, yes/no) is refused, not guessed."""
    value = request.query_params.get(name, "false").strip().lower()
    if value not in TRUE | FALSE:
        raise InvalidInput.for_field(name, f"{name} must be true or false.")
    return value in TRUE


class MeasurementCursorPagination(CursorPagination):
    page_size = 1000
    page_size_query_param = "page_size"
    max_page_size = 10000
    ordering = ("quarter_start", "group__code")


class MeasurementFilter(django_filters.FilterSet):
    group = GroupRefFilter(field_name="group", label="A source or consumer: id, code or metering point")
    start = InstantFilter(field_name="quarter_start", lookup_expr="gte", label="Quarter-hours from (inclusive)")
    end = InstantFilter(field_name="quarter_start", lookup_expr="lt", label="Quarter-hours before (exclusive)")
    quality = django_filters.ChoiceFilter(choices=Quality.choices, label="Values of this quality")
    status = django_filters.ChoiceFilter(choices=Status.choices, label="Values with this status")

    class Meta:
        model = Measurement
        fields = ["group", "start", "end", "quality", "status"]


@extend_schema_view(
    list=extend_schema(
        summary="List measurements per group and quarter-hour",
        description="Ordered by quarter-hour, then group code. Half-open [start, end).",
        tags=["measurements"],
    ),
)
class MeasurementViewSet(mixins.ListModelMixin, TenantViewSet):
    model = Measurement
    serializer_class = MeasurementSerializer
    pagination_class = MeasurementCursorPagination
    filterset_class = MeasurementFilter

    def tenant_queryset(self):
        return measurement_list(tenant=self.tenant)

    @extend_schema(
        summary=f"Store up to {MAX_ITEMS} measurements in one request",
        description="One quarter-hour per item. Re-sent for the same group and quarter-hour: identical → "
        "`unchanged`; different while provisional → `replaced`; different while final → rejected "
        "`MEASUREMENT_FINAL` and kept as a clarification case (its resolution applies the correction). Items "
        "for a closed period (or a group not valid then) are rejected and kept as clarification cases too. Valid "
        "items are stored even when others are rejected. Throttled in its own scope (`bulk`).",
        tags=["measurements"],
        request=MeasurementBulkRequestSerializer,
        responses=MeasurementBulkResultSerializer,
        parameters=[DRY_RUN],
        examples=[OpenApiExample("Four meters", value=BULK_EXAMPLE, request_only=True)],
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
        if not isinstance(body, dict) or set(body) != {"measurements"}:
            raise InvalidInput.for_field("measurements", 'Send {"measurements": [...]} and nothing else.')
        result = measurements_ingest(
            tenant=self.tenant,
            actor=self.actor,
            items=body["measurements"],
            channel="bulk",
            dry_run=_flag(request, "dry_run"),
        )
        return Response(
            {
                "created": result.created,
                "replaced": result.replaced,
                "unchanged": result.unchanged,
                "rejected": result.rejected,
            }
        )

    @extend_schema(
        summary="Import an MSCONS interchange",
        description="The EDIFACT interchange as the body (`application/edifact` or `text/plain`), in the character "
        "set its UNB declares (UNOC: ISO-8859-1, UNOW: UTF-8, …). Values go through the same rules as `bulk`; a "
        "value of a metering point no group carries is rejected `UNKNOWN_METERING_POINT` and kept as one "
        "clarification case per metering point. Each rejection names the position of its QTY segment. An "
        "interchange whose envelope is broken (UNT count or references, truncated, not MSCONS) is refused as a "
        "whole: 400 `VALIDATION_ERROR`, nothing imported. Every interchange is kept; the same bytes again are "
        "imported without effect. Throttled in its own scope (`bulk`).",
        tags=["measurements"],
        request={"application/edifact": OpenApiTypes.BINARY, "text/plain": OpenApiTypes.STR},
        responses=MsconsResultSerializer,
        parameters=[DRY_RUN],
        examples=[OpenApiExample("One value", value=MSCONS_EXAMPLE, request_only=True, media_type="text/plain")],
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="mscons",
        throttle_classes=[BulkRateThrottle],
        parser_classes=[EdifactParser, EdifactTextParser],
        filter_backends=[],
        pagination_class=None,
    )
    def mscons(self, request, *args, **kwargs):
        data = request.data
        if not isinstance(data, bytes):
            raise InvalidInput.for_field("body", "Send the interchange as application/edifact or text/plain.")
        report = mscons_import(
            tenant=self.tenant,
            actor=self.actor,
            source=bytes_source(data),
            channel="api",
            dry_run=_flag(request, "dry_run"),
        )
        return Response(report.as_api())
