"""REST endpoints for balance groups (``/api/v1/balance-groups/``)."""

import datetime as dt

import django_filters
from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from allocation.selectors import consumer_allocation
from balance_groups.models import BalanceGroup, GroupKind
from balance_groups.selectors import group_get, group_list
from balance_groups.serializers import (
    BalanceGroupSerializer,
    BalanceGroupUpdateSerializer,
    GroupBalanceQuerySerializer,
    GroupBalanceSerializer,
    GroupCloseSerializer,
    IntervalSerializer,
)
from balance_groups.services import group_close, group_create, group_delete, group_update
from core.errors import InvalidInput
from core.quarters import QUARTER_SECONDS
from core.rest.fields import format_instant
from core.rest.pagination import PagePagination
from core.rest.views import TenantViewSet
from settlement.selectors import group_balance, parents_in_force
from transactions.selectors import groups_with_status

MAX_BALANCE_INTERVALS = 10_000
MAX_BALANCE_WINDOW = dt.timedelta(days=400)
GROUP_ID = OpenApiParameter(
    "id", str, OpenApiParameter.PATH, description="The group's id (UUID), its code or its metering point."
)
CREATE_EXAMPLES = [
    OpenApiExample(
        "A consumer with its metering point",
        value={
            "code": "APT-3",
            "name": "Apartment 3",
            "kind": "consumer",
            "valid_from": "2026-01-01T00:00:00Z",
            "metering_point": "DE0001234567890000000000000000003",
        },
        request_only=True,
    ),
    OpenApiExample(
        "A balance for one year",
        value={
            "code": "HOUSE-2026",
            "name": "House balance 2026",
            "kind": "balance",
            "valid_from": "2025-12-31T23:00:00Z",
            "valid_until": "2026-12-31T23:00:00Z",
        },
        request_only=True,
    ),
]
UPDATE_EXAMPLES = [
    OpenApiExample("Rename", value={"name": "Apartment 1, ground floor"}, request_only=True),
    OpenApiExample("End the validity", value={"valid_until": "2027-01-01T00:00:00Z"}, request_only=True),
]
CLOSE_EXAMPLES = [
    OpenApiExample("Up to a point in time", value={"until": "2026-02-01T00:00:00Z"}, request_only=True),
    OpenApiExample("The whole group (it ends now)", value={}, request_only=True),
]


class BalanceGroupFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=GroupKind.choices, label="Groups of this kind")
    code = django_filters.CharFilter(field_name="code", label="The group with exactly this code, e.g. PV-ROOF")
    metering_point = django_filters.CharFilter(
        field_name="metering_point", label="The group with exactly this metering point (MaLo/MeLo)"
    )
    name = django_filters.CharFilter(field_name="name", lookup_expr="icontains", label="Name contains")

    class Meta:
        model = BalanceGroup
        fields = ["kind", "code", "metering_point", "name"]


def balance_payload(data: dict) -> dict:
    """``group_balance``'s dict as ``GroupBalanceSerializer`` renders it: same keys, order and formats.

    Built by hand because the nested serializer dominates the time of a long window; a test
    compares both on the same data, so the documented schema and the output cannot drift.
    """
    formatted: dict = {}  # each bucket's end is the next one's start: format every instant once

    def instant(value):
        text = formatted.get(value)
        if text is None:
            text = formatted[value] = format_instant(value)
        return text

    def interval(row: dict) -> dict:
        return {
            "start": instant(row["start"]),
            "end": instant(row["end"]),
            "inflow_wh": int(row["inflow_wh"]),
            "outflow_wh": int(row["outflow_wh"]),
            "net_wh": int(row["net_wh"]),
            "status": str(row["status"]),
            "line_count": int(row["line_count"]),
        }

    return {
        **interval(data),
        "group": str(data["group"]),
        "up_to_date": bool(data["up_to_date"]),
        "intervals": [interval(row) for row in data["intervals"]],
    }


class SplitIntervalSerializer(IntervalSerializer):
    local_wh = serializers.IntegerField(required=False, help_text="Consumers in a scheme: inflow from its sources.")
    residual_wh = serializers.IntegerField(required=False, help_text="Consumers in a scheme: residual supply.")


class GroupBalanceSplitSerializer(GroupBalanceSerializer):
    """The documented balance: for a consumer in an allocation scheme, with its local/residual split."""

    local_wh = serializers.IntegerField(required=False, help_text="Consumers in a scheme: inflow from its sources.")
    residual_wh = serializers.IntegerField(required=False, help_text="Consumers in a scheme: residual supply.")
    intervals = SplitIntervalSerializer(many=True)


def split_payload(payload: dict, split: dict) -> dict:
    """A balance payload with a scheme consumer's local and residual energy (``consumer_allocation``),
    in the order ``GroupBalanceSplitSerializer`` renders them."""
    intervals = [
        {**interval, "local_wh": int(row["local_wh"]), "residual_wh": int(row["residual_wh"])}
        for interval, row in zip(payload["intervals"], split["intervals"], strict=True)
    ]
    return {
        **payload,
        "intervals": intervals,
        "local_wh": sum(interval["local_wh"] for interval in intervals),
        "residual_wh": sum(interval["residual_wh"] for interval in intervals),
    }


@extend_schema_view(
    list=extend_schema(summary="List balance groups", tags=["balance groups"]),
    retrieve=extend_schema(
        summary="Get a balance group (by id or code)", tags=["balance groups"], parameters=[GROUP_ID]
    ),
    create=extend_schema(summary="Create a balance group", tags=["balance groups"], examples=CREATE_EXAMPLES),
    partial_update=extend_schema(
        summary="Change code, name, validity or metering point",
        tags=["balance groups"],
        parameters=[GROUP_ID],
        request=BalanceGroupUpdateSerializer,
        responses=BalanceGroupSerializer,
        examples=UPDATE_EXAMPLES,
    ),
    destroy=extend_schema(
        summary="Delete a balance group without bookings (409 CONFLICT otherwise)",
        tags=["balance groups"],
        parameters=[GROUP_ID],
    ),
)
class BalanceGroupViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    TenantViewSet,
):
    model = BalanceGroup
    serializer_class = BalanceGroupSerializer
    pagination_class = PagePagination
    filterset_class = BalanceGroupFilter
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    lookup_field = "pk"
    lookup_url_kwarg = "id"

    def tenant_queryset(self):
        return groups_with_status(group_list(tenant=self.tenant)).order_by("code")

    def get_object(self):
        group = group_get(tenant=self.tenant, ref=self.kwargs["id"])
        return groups_with_status(BalanceGroup.objects.filter(pk=group.pk)).get()

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if getattr(self, "swagger_fake_view", False) or not getattr(self.request, "user", None):
            return context
        if getattr(self.request.user, "tenant_id", None):
            in_force = parents_in_force(tenant=self.tenant, at=timezone.now())
            context["parents"] = {group_id: parent.pk for group_id, (_, parent) in in_force.items()}
        return context

    def get_serializer_class(self):
        if self.action == "partial_update":
            return BalanceGroupUpdateSerializer
        return super().get_serializer_class()

    def _respond(self, group, code=status.HTTP_200_OK):
        group = groups_with_status(BalanceGroup.objects.filter(pk=group.pk)).get()
        return Response(BalanceGroupSerializer(group, context=self.get_serializer_context()).data, status=code)

    def create(self, request, *args, **kwargs):
        serializer = BalanceGroupSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        group = group_create(tenant=self.tenant, actor=self.actor, **serializer.validated_data)
        return self._respond(group, status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        group = self.get_object()
        serializer = BalanceGroupUpdateSerializer(
            data=request.data, partial=True, context=self.get_serializer_context()
        )
        serializer.is_valid(raise_exception=True)
        changes = dict(serializer.validated_data)
        if changes.get("kind") == group.kind:
            changes.pop("kind")
        group = group_update(group=group, actor=self.actor, **changes)
        return self._respond(group)

    def destroy(self, request, *args, **kwargs):
        group_delete(group=self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Close every quarter-hour before `until` (without it: the whole group)",
        tags=["balance groups"],
        parameters=[GROUP_ID],
        request=GroupCloseSerializer,
        responses=BalanceGroupSerializer,
        examples=CLOSE_EXAMPLES,
    )
    @action(detail=True, methods=["post"], url_path="close")
    def close(self, request, *args, **kwargs):
        group = self.get_object()
        serializer = GroupCloseSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        group = group_close(group=group, actor=self.actor, until=serializer.validated_data.get("until"))
        return self._respond(group)

    @extend_schema(
        summary="Inflow, outflow and net of a group over [start, end)",
        description="`intervals` cover the whole window, zero-filled; `1d` buckets are local days "
        f"(92/96/100 quarter-hours). At most {MAX_BALANCE_INTERVALS} intervals per request. A consumer that "
        "takes part in an allocation scheme in the window also gets `local_wh` (from the scheme's sources) and "
        "`residual_wh` (residual supply), in total and per interval.",
        tags=["balance groups"],
        parameters=[GROUP_ID, GroupBalanceQuerySerializer],
        responses=GroupBalanceSplitSerializer,
    )
    @action(detail=True, methods=["get"], url_path="balance", filter_backends=[], pagination_class=None)
    def balance(self, request, *args, **kwargs):
        group = group_get(tenant=self.tenant, ref=self.kwargs["id"])
        query = GroupBalanceQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        start, end = query.validated_data["start"], query.validated_data["end"]
        resolution = query.validated_data["resolution"]
        if start >= end:
            raise InvalidInput.for_field("end", "end must be after start.")
        span = end - start
        steps = {"15min": QUARTER_SECONDS, "1h": 3600, "1d": 86400}[resolution]
        if span > MAX_BALANCE_WINDOW or span.total_seconds() / steps > MAX_BALANCE_INTERVALS:
            raise InvalidInput.for_field(
                "end", f"The window is too long: at most {MAX_BALANCE_INTERVALS} intervals and 400 days per request."
            )
        payload = balance_payload(group_balance(group=group, start=start, end=end, resolution=resolution))
        if group.kind == GroupKind.CONSUMER:
            split = consumer_allocation(group=group, start=start, end=end, resolution=resolution)
            if split is not None:
                payload = split_payload(payload, split)
        return Response(payload)
