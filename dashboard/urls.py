"""The operator dashboard's URL configuration (mounted at ``/``)."""

from django.contrib.auth import views as auth_views
from django.urls import include, path

from dashboard.views import bookings, clarifications, csv_upload, groups, imbalances, mscons, overview, runs, schemes
from dashboard.views.month_close import month_close_view
from dashboard.views.statements import (
    site_month,
    site_statements_zip,
    statement_csv_view,
    statement_page,
    statement_pdf_view,
    statements_index,
)

pages = [
    path("", overview.overview, name="overview"),
    path("groups/new/", groups.group_create, name="group-create"),
    path("groups/<str:ref>/", groups.group_detail, name="group"),
    path("groups/<str:ref>/edit/", groups.group_edit, name="group-edit"),
    path("groups/<str:ref>/close/", groups.group_close, name="group-close"),
    path("groups/<str:ref>/rule/", groups.rule_edit, name="rule-edit"),
    path("groups/<str:ref>/finalize/", groups.group_finalize, name="group-finalize"),
    path("groups/<str:ref>/balance.csv", groups.group_balance_csv, name="group-csv"),
    path("bookings/", bookings.booking_search_view, name="bookings"),
    path("bookings/<uuid:pk>/finalize/", bookings.booking_finalize_view, name="booking-finalize"),
    path("bookings/<uuid:pk>/reverse/", bookings.booking_reverse_view, name="booking-reverse"),
    path("clarifications/", clarifications.clarification_index, name="clarifications"),
    path("clarifications/<uuid:pk>/resolve/", clarifications.clarification_resolve_view, name="clarification-resolve"),
    path("imbalances/", imbalances.imbalances, name="imbalances"),
    path("settlement/runs/", runs.settlement_runs, name="runs"),
    path("import/", csv_upload.csv_upload, name="csv-upload"),
    path("measurements/import/", csv_upload.measurement_upload, name="measurement-upload"),
    path("measurements/mscons/", mscons.mscons_upload, name="mscons-upload"),
    path("measurements/mscons/interchanges/", mscons.mscons_interchanges, name="mscons-interchanges"),
    path("measurements/mscons/interchanges/<int:pk>/", mscons.mscons_interchange, name="mscons-interchange"),
    path(
        "measurements/mscons/interchanges/<int:pk>/download",
        mscons.mscons_interchange_download,
        name="mscons-interchange-download",
    ),
    path("statements/", statements_index, name="statements"),
    path("statements/<str:code>/<str:month>/", statement_page, name="statement"),
    path("statements/<str:code>/<str:month>/pdf", statement_pdf_view, name="statement-pdf"),
    path("statements/<str:code>/<str:month>/csv", statement_csv_view, name="statement-csv"),
    path("sites/<str:ref>/<str:month>/", site_month, name="site-month"),
    path("sites/<str:ref>/<str:month>/statements.zip", site_statements_zip, name="site-statements-zip"),
    path("sites/<str:ref>/<str:month>/close/", month_close_view, name="month-close"),
    path("schemes/", schemes.scheme_index, name="schemes"),
    path("schemes/new/", schemes.scheme_create, name="scheme-create"),
    # A scheme's code may hold a slash (the API allows it): the path converter keeps it whole.
    path("schemes/<path:code>/new-version/", schemes.scheme_version_create, name="scheme-new-version"),
    path("schemes/<path:code>/", schemes.scheme_detail, name="scheme"),
]

auth_patterns = [
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
]

# Login and logout keep their global names (settings.LOGIN_URL = "login"); the pages live in "dashboard:".
urlpatterns = [*auth_patterns, path("", include((pages, "dashboard")))]
