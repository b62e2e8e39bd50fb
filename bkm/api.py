"""The REST API's URL configuration (``/api/v1/``, ``/api/schema/``, ``/api/docs/``)."""

from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.permissions import AllowAny

from allocation.api import MeasurementViewSet
from allocation.scheme_api import AllocationSchemeViewSet
from allocation.statement_api import StatementViewSet
from balance_groups.api import BalanceGroupViewSet
from core.rest.errors import api_not_found
from core.rest.routers import ApiRouter
from settlement.api import ImbalanceViewSet, SettlementRuleViewSet, SettlementRunViewSet
from transactions.api import BookingViewSet, ClarificationViewSet, LedgerLineViewSet

router = ApiRouter()
router.register("balance-groups", BalanceGroupViewSet, basename="group")
router.register("settlement-rules", SettlementRuleViewSet, basename="rule")
router.register("bookings", BookingViewSet, basename="booking")
router.register("ledger-lines", LedgerLineViewSet, basename="line")
router.register("imbalances", ImbalanceViewSet, basename="imbalance")
router.register("settlement-runs", SettlementRunViewSet, basename="run")
router.register("clarifications", ClarificationViewSet, basename="clarification")
router.register("measurements", MeasurementViewSet, basename="measurement")
router.register("allocation-schemes", AllocationSchemeViewSet, basename="scheme")
router.register("statements", StatementViewSet, basename="statement")

app_name = "api"

urlpatterns = [
    path("v1/", include(router.urls)),
    path(
        "schema/",
        SpectacularAPIView.as_view(permission_classes=[AllowAny], authentication_classes=[], throttle_classes=[]),
        name="schema",
    ),
    path(
        "docs/",
        # Swagger UI sets one inline style from its script: allowed on this page only (styles run no code).
        csp_update({"style-src": [UNSAFE_INLINE]})(
            SpectacularSwaggerSplitView.as_view(
                url_name="api:schema", permission_classes=[AllowAny], authentication_classes=[], throttle_classes=[]
            )
        ),
        name="docs",
    ),
    re_path(r"^.*$", api_not_found),
]
