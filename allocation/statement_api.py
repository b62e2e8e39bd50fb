"""REST endpoints of the monthly statements (``/api/v1/statements/``)."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.decorators import action
from rest_framework.response import Response

from allocation.models import AllocationScheme
from allocation.statement_serializers import SiteStatementsSerializer, StatementSerializer
from allocation.statements import consumer_statement, month_window, site_statements
from balance_groups.models import GroupKind
from balance_groups.selectors import group_get
from core.errors import InvalidInput, NotFound
from core.rest.views import TenantViewSet

MONTH = OpenApiParameter(
    "month", str, OpenApiParameter.QUERY, required=True, description="A local calendar month of the site, YYYY-MM."
)


class StatementViewSet(TenantViewSet):
    model = AllocationScheme  # the schema generator needs one; statements are read, never stored
    pagination_class = None
    filter_backends = []

    def _month(self) -> str:
        month = self.request.query_params.get("month")
        month_window(month)  # refuses a malformed month
        return month

    def _group(self, name: str, label: str):
        ref = self.request.query_params.get(name, "").strip()
        if not ref:
            raise InvalidInput.for_field(name, f"Name the {label}: its id, code or metering point.")
        return group_get(tenant=self.tenant, ref=ref)

    @extend_schema(
        summary="One consumer's statement for a month",
        description="Consumption, the local part per source, the residual supply, the local share, the "
        "provisional and missing quarter-hours and, when the scheme names prices, the amount lines (a price "
        "change mid-month is its own line; each line rounded half-up to cents, the total the sum of the lines). "
        "Summed from the ledger's allocation bookings on every read, never stored.",
        tags=["statements"],
        parameters=[
            OpenApiParameter(
                "consumer", str, OpenApiParameter.QUERY, required=True, description="id, code or metering point"
            ),
            MONTH,
        ],
        responses=StatementSerializer,
    )
    def list(self, request, *args, **kwargs):
        month = self._month()
        group = self._group("consumer", "consumer")
        if group.kind != GroupKind.CONSUMER:
            raise InvalidInput.for_field("consumer", f"{group.code} is a {group.kind} group, not a consumer.")
        statement = consumer_statement(group=group, month=month)
        if statement is None:
            raise NotFound(f"{group.code} takes part in no allocation scheme in {month}.")
        return Response(StatementSerializer(statement).data)

    @extend_schema(
        summary="Every consumer's statement of a site for a month",
        description="The consumers settled below the top balance group `site` during the month, by code.",
        tags=["statements"],
        parameters=[
            OpenApiParameter(
                "site", str, OpenApiParameter.QUERY, required=True, description="The top balance: id or code"
            ),
            MONTH,
        ],
        responses=SiteStatementsSerializer,
    )
    @action(detail=False, methods=["get"], url_path="site")
    def site(self, request, *args, **kwargs):
        month = self._month()
        top = self._group("site", "site's top balance group")
        statements = site_statements(tenant=self.tenant, top=top, month=month)
        payload = {
            "site": top.pk,
            "site_code": top.code,
            "month": month,
            "up_to_date": all(s["up_to_date"] for s in statements),
            "statements": statements,
        }
        return Response(SiteStatementsSerializer(payload).data)
