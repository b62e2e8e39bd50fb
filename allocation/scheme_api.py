"""REST endpoints for allocation schemes (``/api/v1/allocation-schemes/``) and what they allocated."""

import datetime as dt

import django_filters
from django.db.models import Q
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from allocation.models import AllocationScheme
from allocation.scheme_serializers import (
    PRICE_FIELDS,
    AllocationSchemeSerializer,
    SchemeAllocationSerializer,
    allocation_payload,
)
from allocation.selectors import scheme_allocation, scheme_get, scheme_list, scheme_versions
from allocation.services import scheme_change
from balance_groups.rest import GroupRefFilter
from balance_groups.serializers import GroupBalanceQuerySerializer
from core.errors import InvalidInput
from core.quarters import QUARTER_SECONDS
from core.rest.filters import InstantFilter
from core.rest.pagination import PagePagination
from core.rest.views import TenantViewSet

MAX_INTERVALS = 10_000
MAX_WINDOW = dt.timedelta(days=400)
# Figures in one response (intervals times rows per interval), to bound its memory: for a site of
# 200 consumers a week of quarter-hours or a month of hours, and any window of days.
MAX_FIGURES = 500_000
SCHEME_ID = OpenApiParameter("id", str, OpenApiParameter.PATH, description="The scheme version's id (UUID).")
SCHEME_EXAMPLES = [
    OpenApiExample(
        "Tenant electricity: PV first, dynamic, with prices",
        value={
            "code": "MIETERSTROM",
            "name": "Tenant electricity house 1",
            "sources": ["PV-ROOF"],
            "consumers": [{"group": "APT-1", "share": 5000}, {"group": "APT-2", "share": 5000}],
            "method": "dynamic",
            "surplus_to": "GRID-EXPORT",
            "residual_from": "GRID-IMPORT",
            "effective_from": "2026-01-01T00:00:00Z",
            "price_local_ct_per_kwh": "27.5",
            "price_residual_ct_per_kwh": "32.9",
            "base_fee_eur_per_month": "5.00",
        },
        request_only=True,
    ),
    OpenApiExample(
        "Fixed shares, unused shares offered again",
        value={
            "code": "STATIC-HOUSE",
            "name": "Fixed shares",
            "sources": ["PV-ROOF"],
            "consumers": [
                {"group": "APT-1", "share": 6000},
                {"group": "APT-2", "share": 3000},
                {"group": "HEAT-PUMP", "share": 1000},
            ],
            "method": "static_redistributed",
            "surplus_to": "GRID-EXPORT",
            "residual_from": "GRID-IMPORT",
            "effective_from": "2026-01-01T00:00:00Z",
        },
        request_only=True,
    ),
]


class AllocationSchemeFilter(django_filters.FilterSet):
    code = django_filters.CharFilter(field_name="code", label="Versions of the scheme with exactly this code")
    at = InstantFilter(method="filter_at", label="Versions in force at this instant")
    consumer = GroupRefFilter(field_name="consumers__group", label="Versions with this consumer (id, code, MaLo)")
    source = GroupRefFilter(field_name="sources__group", label="Versions with this source (id, code, MaLo)")

    class Meta:
        model = AllocationScheme
        fields = ["code", "at", "consumer", "source"]

    def filter_at(self, queryset, name, value):
        return queryset.filter(effective_from__lte=value).filter(
            Q(effective_until__isnull=True) | Q(effective_until__gt=value)
        )


def _figures_per_interval(versions) -> int:
    """Rows of one interval of the allocation read: each source with its consumers, each consumer."""
    sources = {p.group_id for v in versions for p in v.sources.all()}
    consumers = {p.group_id for v in versions for p in v.consumers.all()}
    return len(sources) * (len(consumers) + 1) + len(consumers)


@extend_schema_view(
    list=extend_schema(summary="List allocation scheme versions (by code, then start)", tags=["allocation schemes"]),
    retrieve=extend_schema(
        summary="Get an allocation scheme version", tags=["allocation schemes"], parameters=[SCHEME_ID]
    ),
    create=extend_schema(
        summary="Add a scheme, or the next version of the scheme with this code",
        description="A scheme's first version may start when all its groups are valid; a later version (same "
        "`code`) no earlier than the next quarter-hour boundary after now, and ends the version before it. "
        "Shares sum to 10000; sources are of kind source, consumers of kind consumer; a group takes part in one "
        "scheme at a time. Prices are decimal strings (a JSON number is refused; more decimal places than "
        "allowed are refused, never rounded).",
        tags=["allocation schemes"],
        examples=SCHEME_EXAMPLES,
    ),
)
class AllocationSchemeViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    model = AllocationScheme
    serializer_class = AllocationSchemeSerializer
    pagination_class = PagePagination
    filterset_class = AllocationSchemeFilter

    def tenant_queryset(self):
        return scheme_list(tenant=self.tenant)

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        scheme = scheme_change(
            tenant=self.tenant,
            actor=self.actor,
            code=data["code"],
            name=data["name"],
            method=data["method"],
            sources=data["sources"],
            consumers=[(item["group"], item["share"]) for item in data["consumers"]],
            surplus_to=data["surplus_to"],
            residual_from=data["residual_from"],
            effective_from=data.get("effective_from"),
            prices={field: data.get(field) for field in PRICE_FIELDS},
        )
        scheme = scheme_get(tenant=self.tenant, pk=scheme.pk)
        return Response(self.get_serializer(scheme).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="What the scheme allocated over [start, end), per interval",
        description="Covers every version of the scheme's code in force in the window. Per interval and source: "
        "generation, surplus and the part allocated to each consumer; per consumer: consumption, local part, "
        "residual supply. `gaps` counts quarter-hours with a participant's measurement missing: they are not "
        "allocated (their energy is `unallocated_wh`), never taken as zero. `1d` intervals are local days "
        f"(92/96/100 quarter-hours). At most {MAX_INTERVALS} intervals, 400 days and {MAX_FIGURES:,} figures "
        "(intervals times rows per interval) per request.",
        tags=["allocation schemes"],
        parameters=[SCHEME_ID, GroupBalanceQuerySerializer],
        responses=SchemeAllocationSerializer,
    )
    @action(detail=True, methods=["get"], url_path="allocation", filter_backends=[], pagination_class=None)
    def allocation(self, request, *args, **kwargs):
        scheme = self.get_object()
        query = GroupBalanceQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        start, end = query.validated_data["start"], query.validated_data["end"]
        resolution = query.validated_data["resolution"]
        if start >= end:
            raise InvalidInput.for_field("end", "end must be after start.")
        span = end - start
        intervals = span.total_seconds() / {"15min": QUARTER_SECONDS, "1h": 3600, "1d": 86400}[resolution]
        if span > MAX_WINDOW or intervals > MAX_INTERVALS:
            raise InvalidInput.for_field(
                "end", f"The window is too long: at most {MAX_INTERVALS} intervals and 400 days per request."
            )
        versions = scheme_versions(scheme=scheme, start=start, end=end)
        if intervals * _figures_per_interval(versions) > MAX_FIGURES:
            raise InvalidInput.for_field(
                "end",
                "The window holds too many figures for this scheme: ask for a shorter one or a coarser resolution.",
            )
        codes = {p.group_id: p.group.code for v in versions for p in (*v.sources.all(), *v.consumers.all())}
        data = scheme_allocation(scheme=scheme, start=start, end=end, resolution=resolution)
        return Response(allocation_payload(data, codes))
