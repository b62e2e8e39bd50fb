"""Behind-the-meter figures derived from kinds, hierarchy and flows."""

import pytest
from django.utils import timezone

from dashboard.figures import site_figures
from dashboard.tests.conftest import local
from settlement.selectors import group_window_nets, hierarchy_tree
from transactions.services import booking_finalize, booking_reverse

pytestmark = pytest.mark.django_db


def figures(tenant):
    roots = hierarchy_tree(tenant=tenant, at=timezone.now())
    return site_figures(tenant=tenant, roots=roots, start=local(0), end=local(24))


def test_figures_of_a_day(tenant, flows, book):
    # Add a battery: PV charges it with 60, it discharges 50 to the apartment.
    book("PV", "APT", local(12), local(13), 40)
    result = figures(tenant)
    # Generation: PV delivered 400 + 100 + 40; consumption: APT took 400 + 200 + 40.
    assert result.generation_wh == 540
    assert result.consumption_wh == 640
    assert (result.grid_import_wh, result.grid_export_wh) == (200, 100)
    assert result.self_consumption_rate == pytest.approx(440 / 540)
    assert result.autarky_rate == pytest.approx(440 / 640)
    assert (result.top_codes, result.outside_codes) == (["GRID-CONNECTION"], ["SUPPLIER"])


def test_storage_is_not_counted_twice(tenant, site, book, make_group, operator):
    from settlement.services import rule_change

    battery = make_group("BATTERY", "source")
    rule_change(
        group=battery, actor=operator, targets=[(site["GRID-CONNECTION"], 10000)], effective_from=battery.valid_from
    )
    book("PV", "BATTERY", local(11), local(12), 60)
    book("BATTERY", "APT", local(19), local(20), 50)
    result = figures(tenant)
    assert result.generation_wh == 50  # PV 60 out, battery 50 out - 60 in
    assert result.consumption_wh == 50
    assert result.autarky_rate == 1.0


def test_reversal_cancels_its_booking_and_settlements_are_ignored(tenant, flows):
    booking_reverse(booking=flows["pv_supplier"], actor="system:test")
    booking_finalize(booking=flows["supplier_apt"], actor="system:test")
    booking_reverse(booking=flows["supplier_apt"], actor="system:test")
    result = figures(tenant)
    assert (result.grid_import_wh, result.grid_export_wh) == (0, 0)
    assert (result.generation_wh, result.consumption_wh) == (400, 400)
    assert (result.self_consumption_rate, result.autarky_rate) == (1.0, 1.0)


def test_no_flows_gives_no_rates(tenant, site):
    result = figures(tenant)
    assert (result.generation_wh, result.self_consumption_rate, result.autarky_rate) == (0, None, None)


def test_group_window_nets_sum_to_zero(tenant, flows):
    nets = group_window_nets(tenant=tenant, start=local(0), end=local(24))
    assert sum(entry["net_wh"] for entry in nets.values()) == 0
    assert nets[flows["supplier_apt"].source_id]["status"] == "provisional"


def test_chart_axes_are_in_kwh_and_labelled_in_the_active_language(site, flows):
    from django.utils import translation

    from dashboard.charts import balance_chart_data
    from settlement.selectors import group_balance

    two_days = group_balance(group=site["APT"], start=local(0), end=local(48))
    chart = balance_chart_data(two_days)
    assert (chart["unit"], chart["divisor"]) == ("kWh per quarter-hour", 1000)
    assert chart["labels"][0] == "Tue 10.03. 00:00" and chart["text"]["provisional"] == "provisional"
    assert chart["series"]["inflow"][40] == 150  # the data stay exact Wh; only the axis shows kWh
    with translation.override("de"):
        german = balance_chart_data(two_days)
    assert german["labels"][0] == "Di 10.03. 00:00"
    assert german["series"] == chart["series"]
