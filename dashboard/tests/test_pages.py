"""The dashboard's pages: login, tenant scoping, overview, group page, query counts."""

import datetime as dt

import pytest
from django.urls import reverse

from dashboard.tests.conftest import DAY, PASSWORD
from transactions.models import BookingStatus

pytestmark = pytest.mark.django_db


def test_anonymous_is_sent_to_login(client):
    response = client.get(reverse("dashboard:overview"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_login_and_logout(client, operator):
    page = client.get(reverse("login"))
    assert page.status_code == 200
    assert b'name="csrfmiddlewaretoken"' in page.content
    response = client.post(reverse("login"), {"username": "operator", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get(reverse("dashboard:overview")).status_code == 200
    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("dashboard:overview")).status_code == 302


def test_wrong_password_is_refused_with_message(client, operator):
    response = client.post(reverse("login"), {"username": "operator", "password": "nope"})
    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content


def test_user_without_tenant_gets_a_clear_403(client, no_tenant_user):
    client.force_login(no_tenant_user)
    for name in ("dashboard:overview", "dashboard:clarifications", "dashboard:runs", "dashboard:csv-upload"):
        response = client.get(reverse(name))
        assert response.status_code == 403
        assert b"not assigned to a tenant" in response.content


def test_overview_shows_hierarchy_figures_and_counts(client_in, flows, django_assert_max_num_queries):
    # The signals (waiting, badges) add a fixed handful of queries, never one per group.
    with django_assert_max_num_queries(22):
        response = client_in.get(reverse("dashboard:overview"), {"day": DAY.isoformat()})
    assert response.status_code == 200
    rows = response.context["rows"]
    assert [(row["group"].code, row["depth"]) for row in rows] == [
        ("GRID-CONNECTION", 0),
        ("APT", 1),
        ("HOUSE", 1),
        ("PV", 1),
        ("SUPPLIER", 0),
    ]
    by_code = {row["group"].code: row for row in rows}
    # SUPPLIER delivered 200 and received 100: its net that day is -100 and provisional (sup-apt).
    assert by_code["SUPPLIER"]["day"]["net_wh"] == -100
    assert by_code["SUPPLIER"]["day"]["status"] == BookingStatus.PROVISIONAL
    figures = response.context["figures"]
    assert (figures.generation_wh, figures.grid_import_wh, figures.grid_export_wh) == (500, 200, 100)
    assert response.context["chart"]["labels"][0] == "00:00"
    assert len(response.context["chart"]["series"]["net"]) == 96
    assert b"How these figures are derived" in response.content


def test_overview_never_shows_another_tenants_groups(client_in, site, stranger):
    response = client_in.get(reverse("dashboard:overview"))
    assert b"GRID-CONNECTION" in response.content
    assert b"FOREIGN-PV" not in response.content


def test_group_page_chart_table_bookings_rules(client_in, site, flows, django_assert_max_num_queries):
    url = reverse("dashboard:group", args=[site["APT"].pk])
    with django_assert_max_num_queries(16):
        response = client_in.get(url, {"day": DAY.isoformat()})
    assert response.status_code == 200
    chart = response.context["chart"]
    assert len(chart["labels"]) == 96
    # 10:00-11:00 local is quarters 40..43: APT receives 400/4 + 200/4 = 150 Wh per quarter.
    assert chart["series"]["inflow"][40:44] == [150, 150, 150, 150]
    assert chart["status"][40] == "provisional"
    assert sum(chart["series"]["inflow"]) == 600
    assert b'id="balance-chart-data"' in response.content
    manual = [b for b in response.context["page"] if b.kind == "manual"]
    assert {b.external_id for b in manual} == {"pv-apt", "sup-apt"}
    assert [r.interval for r in response.context["rules"]] == ["15min"]


def test_group_page_accepts_code_and_unknown_is_404(client_in, site):
    assert client_in.get(reverse("dashboard:group", args=["APT"])).status_code == 200
    assert client_in.get(reverse("dashboard:group", args=["NOPE"])).status_code == 404


def test_another_tenants_group_is_404_everywhere(client_in, stranger):
    ref = stranger["group"].pk
    for name in ("group", "group-edit", "group-close", "rule-edit", "group-csv"):
        assert client_in.get(reverse(f"dashboard:{name}", args=[ref])).status_code == 404, name
    assert (
        client_in.post(reverse("dashboard:group-finalize", args=[ref]), {"until": "2026-03-10T12:00"}).status_code
        == 404
    )


@pytest.mark.parametrize(("day", "quarters"), [("2026-03-29", 92), ("2026-10-25", 100), ("2026-06-01", 96)])
def test_group_day_has_92_96_or_100_quarter_hours(client_in, site, day, quarters):
    response = client_in.get(reverse("dashboard:group", args=[site["PV"].pk]), {"day": day})
    assert response.context["quarters"] == quarters
    assert len(response.context["chart"]["series"]["net"]) == quarters


def test_group_week_and_navigation(client_in, site):
    response = client_in.get(reverse("dashboard:group", args=[site["PV"].pk]), {"day": "2026-03-23", "span": "week"})
    # 23..29 March: six days of 96 and the spring DST day of 92.
    assert response.context["quarters"] == 6 * 96 + 92
    assert "day=2026-03-16" in response.context["previous_url"]
    assert "day=2026-03-30" in response.context["next_url"]


def test_bookings_filter_and_htmx_partial(client_in, site, flows, django_assert_max_num_queries):
    url = reverse("dashboard:group", args=[site["APT"].pk])
    with django_assert_max_num_queries(8):
        response = client_in.get(
            url,
            {"day": DAY.isoformat(), "status": "final", "kind": "manual"},
            HTTP_HX_REQUEST="true",
            HTTP_HX_TARGET="bookings",
        )
    assert response.status_code == 200
    assert b"<html" not in response.content  # the partial only
    assert [b.external_id for b in response.context["page"]] == ["pv-apt"]


def test_bookings_are_paginated(client_in, site, book):
    start = dt.datetime(2026, 3, 9, 23, 0, tzinfo=dt.UTC)
    for i in range(30):
        quarter = start + dt.timedelta(minutes=15 * i)
        book("PV", "APT", quarter, quarter + dt.timedelta(minutes=15), 10, external_id=f"q{i}")
    url = reverse("dashboard:group", args=[site["PV"].pk])
    first = client_in.get(url, {"day": DAY.isoformat(), "kind": "manual"})
    assert first.context["page"].paginator.count == 30
    assert len(first.context["page"]) == 25
    second = client_in.get(url, {"day": DAY.isoformat(), "kind": "manual", "page": 2})
    assert len(second.context["page"]) == 5


def test_imbalances_page_lists_the_days_rows_of_the_tenant(
    client_in, site, flows, stranger, django_assert_max_num_queries
):
    with django_assert_max_num_queries(8):
        response = client_in.get(reverse("dashboard:imbalances"), {"day": DAY.isoformat(), "nonzero": "1"})
    rows = list(response.context["page"])
    assert rows, "the settlement engine materialised the day's imbalances"
    assert {row.group.tenant_id for row in rows} == {site["APT"].tenant_id}
    assert all(row.net_wh != 0 for row in rows)
    supplier = [row for row in rows if row.group.code == "SUPPLIER"]
    # SUPPLIER: -50 (to APT) + 25 (from PV) per quarter from 10:00 to 11:00 local.
    assert [row.net_wh for row in supplier] == [-25, -25, -25, -25]
    only = client_in.get(reverse("dashboard:imbalances"), {"day": DAY.isoformat(), "group": str(site["PV"].pk)})
    assert {row.group.code for row in only.context["page"]} <= {"PV"}
    assert b"FOREIGN-PV" not in response.content


def test_clarifications_page_query_count(client_in, tenant, django_assert_max_num_queries):
    from transactions.models import ClarificationCase

    for i in range(5):
        ClarificationCase.objects.create(tenant=tenant, reason="PERIOD_CLOSED", detail=f"case {i}", payload={"n": i})
    with django_assert_max_num_queries(6):
        response = client_in.get(reverse("dashboard:clarifications"))
    assert len(response.context["rows"]) == 5


def test_overview_queries_do_not_grow_with_the_number_of_groups(client_in, site, flows, make_group, operator, book):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from dashboard.tests.conftest import local
    from settlement.services import rule_change

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client_in.get(reverse("dashboard:overview"), {"day": DAY.isoformat()}).status_code == 200
        return len(queries)

    before = count()
    for i in range(6):
        group = make_group(f"APT-{i}", "consumer")
        rule_change(group=group, actor=operator, targets=[(site["HOUSE"], 10000)], effective_from=group.valid_from)
        book("PV", group.code, local(12), local(13), 40 + i)
    assert count() == before
