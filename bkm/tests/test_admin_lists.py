"""The admin: readable app labels, instants in the site's zone (named in the header), useful columns,
filters and search; read-only where the services own the data."""

import datetime as dt

import pytest
from django.urls import reverse

from balance_groups.factories import GroupFactory
from core.testing import T0
from settlement.models import Imbalance
from transactions.models import Booking

# 2026-12-01 13:00 UTC is 14:00 in Berlin (winter time).
DECEMBER = dt.datetime(2026, 12, 1, 13, 0, tzinfo=dt.UTC)


def changelist(app: str, model: str) -> str:
    return reverse(f"admin:{app}_{model}_changelist")


@pytest.fixture
def bookings(api_site, book):
    first = book(
        api_site["pv"], api_site["apt"], DECEMBER, DECEMBER + dt.timedelta(hours=1), 1234, external_id="m-4711"
    )
    second = book(api_site["grid"], api_site["house"], T0, T0 + dt.timedelta(minutes=15), 7, status="final")
    return first, second


def test_the_index_shows_readable_app_labels(admin_client):
    page = admin_client.get(reverse("admin:index")).content.decode()
    for label in ("Balance groups", "Bookings", "Settlement", "Allocation"):
        assert f">{label}<" in page, label
    assert "Balance_Groups" not in page and "BALANCE_GROUPS" not in page


def test_the_header_names_the_sites_zone(admin_client, settings):
    page = admin_client.get(reverse("admin:index")).content.decode()
    assert f"times in {settings.SITE_TIME_ZONE}" in page


def test_the_booking_list_has_its_columns_in_local_time(admin_client, bookings):
    page = admin_client.get(changelist("transactions", "booking")).content.decode()
    for header in ("External id", "Source", "Destination", "Start", "End", "Energy (Wh)", "Kind", "Status"):
        assert header in page, header
    assert "m-4711" in page and "PV-ROOF" in page and "APT-1" in page
    assert "1,234" in page  # whole Wh, grouped
    assert "Dec. 1, 2026, 2 p.m." in page  # 13:00 UTC shown in Europe/Berlin
    assert "Manual" in page and "Final" in page


@pytest.mark.parametrize(
    ("query", "shown", "hidden"),
    [
        ("?q=m-4711", "m-4711", "GRID-IMPORT"),
        ("?status__exact=final", "GRID-IMPORT", "m-4711"),
        ("?kind__exact=manual", "m-4711", "nothing-else"),
        ("?kind__exact=reversal", "0 bookings", "m-4711"),
    ],
)
def test_bookings_are_searched_and_filtered(admin_client, bookings, query, shown, hidden):
    page = admin_client.get(changelist("transactions", "booking") + query).content.decode()
    assert shown in page and hidden not in page


def test_bookings_filter_by_tenant(admin_client, bookings, tenant, other_tenant):
    base = changelist("transactions", "booking")
    assert "m-4711" in admin_client.get(f"{base}?tenant__id__exact={tenant.pk}").content.decode()
    assert "m-4711" not in admin_client.get(f"{base}?tenant__id__exact={other_tenant.pk}").content.decode()


def test_imbalances_filter_by_group(admin_client, tenant, api_site):
    for group, inflow, outflow in ((api_site["pv"], 0, 5), (api_site["apt"], 5, 0)):
        Imbalance.objects.create(
            tenant=tenant,
            group=group,
            quarter_start=DECEMBER,
            inflow_wh=inflow,
            outflow_wh=outflow,
            net_wh=inflow - outflow,
        )
    base = changelist("settlement", "imbalance")
    page = admin_client.get(base).content.decode()
    assert "By group" in page
    page = admin_client.get(f"{base}?group__id__exact={api_site['apt'].pk}").content.decode()
    rows = page.split('id="result_list"')[1].split('id="changelist-filter"')[0]
    assert "APT-1" in rows and "PV-ROOF" not in rows


def test_an_admin_form_takes_local_time(admin_client, tenant):
    response = admin_client.post(
        reverse("admin:balance_groups_balancegroup_add"),
        {
            "tenant": tenant.pk,
            "code": "LOCAL",
            "name": "Local time",
            "kind": "consumer",
            "valid_from_0": "2026-12-01",
            "valid_from_1": "14:00:00",
            "metering_point": "",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    from balance_groups.models import BalanceGroup

    assert BalanceGroup.objects.get(code="LOCAL").valid_from == DECEMBER


def test_an_instant_at_the_edge_of_the_calendar_is_shown_in_utc(admin_client, tenant):
    edge = dt.datetime(9999, 12, 31, 23, 45, tzinfo=dt.UTC)
    group = GroupFactory(tenant=tenant, code="EDGE", kind="consumer", valid_until=edge)
    page = admin_client.get(reverse("admin:balance_groups_balancegroup_change", args=[group.pk]))
    assert page.status_code == 200
    assert "times in UTC" in page.content.decode()
    assert "times in UTC" not in admin_client.get(reverse("admin:index")).content.decode()


def test_read_only_lists_stay_read_only(admin_client, bookings):
    booking = Booking.objects.get(external_id="m-4711")
    assert admin_client.get(reverse("admin:transactions_booking_add")).status_code == 403
    assert admin_client.get(reverse("admin:settlement_imbalance_add")).status_code == 403
    change = reverse("admin:transactions_booking_change", args=[booking.pk])
    assert admin_client.post(change, {"energy_wh": 1}).status_code == 403
    assert Booking.objects.get(pk=booking.pk).energy_wh == 1234


def test_the_booking_list_in_german(admin_client, bookings):
    page = admin_client.get(changelist("transactions", "booking"), HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert 'lang="de"' in page
    assert "1.234" in page  # German thousands separator
    assert "1. Dezember 2026 14:00" in page  # German date, in the site's zone
