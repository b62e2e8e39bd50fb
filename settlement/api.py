"""REST endpoints for settlement rules, imbalances and settlement runs."""

import django_filters
from django.db.models import Q
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.response import Response

from balance_groups.rest import GroupRefFilter
from core.quarters import EARLIEST, LATEST, parse_instant
from core.rest.filters import InstantFilter
from core.rest.pagination import ImbalanceCursorPagination, PagePagination
from core.rest.views import TenantViewSet
from settlement.models import Imbalance, RunStatus, SettlementRule, SettlementRun
from settlement.selectors import imbalance_list, settlement_run_list, stale_days
from settlement.serializers import ImbalanceSerializer, SettlementRuleSerializer, SettlementRunSerializer
from settlement.services import rule_change, settlement_run_request
from transactions.models import BookingStatus

RULE_ID = OpenApiParameter("id", str, OpenApiParameter.PATH, description="The rule version's id (UUID).")
RUN_ID = OpenApiParameter("id", str, OpenApiParameter.PATH, description="The settlement run's id (UUID).")
RULE_EXAMPLES = [
    OpenApiExample(
        "Apartment settled into the house",
        value={
            "group": "APT-1",
            "targets": [{"parent": "HOUSE", "share": 10000}],
            "interval": "15min",
            "effective_from": "2026-01-01T00:00:00Z",
        },
        request_only=True,
    ),
    OpenApiExample(
        "PV split between two balances, hourly",
        value={
            "group": "PV-ROOF",
            "targets": [{"parent": "HOUSE", "share": 7000}, {"parent": "HOUSE-B", "share": 3000}],
            "interval": "1h",
            "effective_from": "2026-01-01T00:00:00Z",
        },
        request_only=True,
    ),
]
RUN_EXAMPLES = [
    OpenApiExample(
        "One local day (29 March, the spring DST change: 23 hours)",
        value={"start": "2026-03-28T23:00:00Z", "end": "2026-03-29T22:00:00Z"},
        request_only=True,
    )
]


class SettlementRuleFilter(django_filters.FilterSet):
    group = GroupRefFilter(field_name="group", label="Versions of this group's rule (id, code or metering point)")
    at = InstantFilter(method="filter_at", label="In force at this instant")

    class Meta:
        model = SettlementRule
        fields = ["group", "at"]

    def filter_at(self, queryset, name, value):
        return queryset.filter(effective_from__lte=value).filter(
            Q(effective_until__isnull=True) | Q(effective_until__gt=value)
        )


@extend_schema_view(
    list=extend_schema(summary="List settlement rule versions", tags=["settlement rules"]),
    retrieve=extend_schema(summary="Get a settlement rule version", tags=["settlement rules"], parameters=[RULE_ID]),
    create=extend_schema(
        summary="Add a rule version (ends the previous version at its effective_from)",
        tags=["settlement rules"],
        examples=RULE_EXAMPLES,
    ),
)
class SettlementRuleViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    model = SettlementRule
    serializer_class = SettlementRuleSerializer
    pagination_class = PagePagination
    filterset_class = SettlementRuleFilter

    def tenant_queryset(self):
        return (
            SettlementRule.objects.filter(tenant=self.tenant)
            .prefetch_related("targets")
            .order_by("group__code", "effective_from", "id")
        )

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        rule = rule_change(
            group=data["group"],
            actor=self.actor,
            targets=[(target["parent"], target["share"]) for target in data["targets"]],
            interval=data["interval"],
            effective_from=data.get("effective_from"),
        )
        rule = self.tenant_queryset().get(pk=rule.pk)
        return Response(self.get_serializer(rule).data, status=status.HTTP_201_CREATED)


class ImbalanceFilter(django_filters.FilterSet):
    start = InstantFilter(field_name="quarter_start", lookup_expr="gte", label="Quarter-hours from (inclusive)")
    end = InstantFilter(field_name="quarter_start", lookup_expr="lt", label="Quarter-hours before (exclusive)")
    group = GroupRefFilter(field_name="group", label="Rows of this group (id, code or metering point)")
    status = django_filters.ChoiceFilter(
        choices=BookingStatus.choices, method="filter_status", label="Rows with this status"
    )

    class Meta:
        model = Imbalance
        fields = ["start", "end", "group", "status"]

    def filter_status(self, queryset, name, value):
        return queryset.filter(is_final=value == "final")


@extend_schema_view(
    list=extend_schema(
        summary="Inflow, outflow and net per group and quarter-hour",
        description="Rows exist for quarter-hours with bookings; a missing row means zero. Half-open [start, end). "
        "`up_to_date` is false while a change inside the window waits for recomputation; such rows say provisional.",
        tags=["imbalances"],
    ),
)
class ImbalanceViewSet(mixins.ListModelMixin, TenantViewSet):
    model = Imbalance
    serializer_class = ImbalanceSerializer
    pagination_class = ImbalanceCursorPagination
    filterset_class = ImbalanceFilter

    def tenant_queryset(self):
        return imbalance_list(tenant=self.tenant).select_related("group")

    def list(self, request, *args, **kwargs):
        queryset = self.filter_queryset(self.get_queryset())  # refuses bad filters with a 400 first
        params = request.query_params
        start = parse_instant(params["start"], "start", aligned=False) if params.get("start") else EARLIEST
        end = parse_instant(params["end"], "end", aligned=False) if params.get("end") else LATEST
        stale = stale_days(tenant_id=self.tenant.pk, start=start, end=end)
        page = self.paginate_queryset(queryset)
        serializer = self.get_serializer(page, many=True, context={**self.get_serializer_context(), "stale": stale})
        response = self.get_paginated_response(serializer.data)
        response.data["up_to_date"] = not stale
        return response


class SettlementRunFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=RunStatus.choices, label="Runs with this status")

    class Meta:
        model = SettlementRun
        fields = ["status"]


@extend_schema_view(
    list=extend_schema(summary="List settlement runs (newest first)", tags=["settlement runs"]),
    retrieve=extend_schema(summary="Get a settlement run", tags=["settlement runs"], parameters=[RUN_ID]),
    create=extend_schema(
        summary="Queue a settlement run for [start, end)",
        description="Queued for a worker when a broker is configured, otherwise run right away. "
        "Returns 202 with the run.",
        tags=["settlement runs"],
        responses={202: SettlementRunSerializer},
        examples=RUN_EXAMPLES,
    ),
)
class SettlementRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    model = SettlementRun
    serializer_class = SettlementRunSerializer
    pagination_class = PagePagination
    filterset_class = SettlementRunFilter

    def tenant_queryset(self):
        return settlement_run_list(tenant=self.tenant)

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        run = settlement_run_request(
            tenant=self.tenant,
            actor=self.actor,
            start=serializer.validated_data["start"],
            end=serializer.validated_data["end"],
        )
        run.refresh_from_db()
        return Response(self.get_serializer(run).data, status=status.HTTP_202_ACCEPTED)
