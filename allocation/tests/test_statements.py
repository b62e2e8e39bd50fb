"""Monthly statements per consumer, computed by hand (local month of Europe/Berlin)."""

import datetime as dt
from decimal import Decimal

import pytest

from allocation.statements import consumer_statement, energy_amount, month_window, site_statements
from balance_groups.services import group_close
from core.errors import InvalidInput
from core.testing import T0
from settlement.services import rule_change

UTC = dt.UTC
OCTOBER = dt.datetime(2026, 9, 30, 22, 0, tzinfo=UTC)  # 2026-10-01 00:00 CEST
OCTOBER_END = dt.datetime(2026, 10, 31, 23, 0, tzinfo=UTC)  # 2026-11-01 00:00 CET: the month held a 25-hour day
OCTOBER_16 = dt.datetime(2026, 10, 15, 22, 0, tzinfo=UTC)  # 2026-10-16 00:00 CEST
BEFORE = dt.datetime(2026, 9, 1, tzinfo=UTC)  # "now" for versions set up ahead of time
PRICES = {
    "price_local_ct_per_kwh": Decimal("27.5"),
    "price_residual_ct_per_kwh": Decimal("38.9"),
    "base_fee_eur_per_month": Decimal("9.90"),
}


@pytest.fixture
def october(site, make_scheme, measure):
    """PV shared dynamically by APT-1 and APT-2 over four quarter-hours of 1 October."""
    make_scheme("dynamic", sources=[site.pv], prices=PRICES)
    measure(
        {site.pv: [1000, 0, 600, 333], site.apt1: [800, 500, 300, 1000], site.apt2: [400, 500, 300, 0]},
        start=OCTOBER,
        status="final",
    )
    return site


def test_the_figures_and_amounts_of_a_month(october):
    statement = consumer_statement(group=october.apt1, month="2026-10")
    # q0: 1000 Wh for 800 + 400 -> 666.67 / 333.33, the remainder to the larger part: 667 / 333
    # q1: no PV; q2: 300 / 300 exactly; q3: all 333 to APT-1 (APT-2 consumed nothing)
    assert statement["consumption_wh"] == 2600
    assert statement["local"] == [
        {"source": october.pv.pk, "source_code": "PV", "source_name": october.pv.name, "energy_wh": 1300}
    ]
    assert (statement["local_wh"], statement["residual_wh"], statement["unallocated_wh"]) == (1300, 1300, 0)
    assert statement["local_share_percent"] == Decimal("50.0")
    assert statement["quarter_hours"] == 2980  # 31 days and the extra hour of 25 October
    assert statement["missing_quarter_hours"] == 2976  # only four quarter-hours were measured
    assert statement["provisional_quarter_hours"] == 0
    assert (statement["status"], statement["closed"], statement["up_to_date"]) == ("provisional", False, True)
    # 1.3 kWh x 27.5 ct = 0.3575 EUR -> 0.36; 1.3 kWh x 38.9 ct = 0.5057 -> 0.51; the full base fee
    assert [(line["kind"], line["energy_wh"], line["amount_eur"]) for line in statement["lines"]] == [
        ("local", 1300, Decimal("0.36")),
        ("residual", 1300, Decimal("0.51")),
        ("base_fee", None, Decimal("9.90")),
    ]
    assert statement["amounts"] == {
        "local_eur": Decimal("0.36"),
        "residual_eur": Decimal("0.51"),
        "base_fee_eur": Decimal("9.90"),
        "corrections_eur": Decimal("0.00"),
        "total_eur": Decimal("10.77"),
    }
    first_day = statement["days"][0]
    assert (first_day["date"], first_day["consumption_wh"], first_day["local_wh"]) == (dt.date(2026, 10, 1), 2600, 1300)
    assert len(statement["days"]) == 31


def test_the_second_consumer_rounds_its_own_lines(october):
    statement = consumer_statement(group=october.apt2, month="2026-10")
    assert (statement["consumption_wh"], statement["local_wh"], statement["residual_wh"]) == (1200, 633, 567)
    assert statement["local_share_percent"] == Decimal("52.8")  # 52.75 rounds half-up
    # 0.633 kWh x 27.5 ct = 0.174075 -> 0.17; 0.567 kWh x 38.9 ct = 0.220563 -> 0.22
    assert statement["amounts"]["total_eur"] == Decimal("10.29")
    assert statement["amounts"]["total_eur"] == sum(line["amount_eur"] for line in statement["lines"])


def test_amounts_round_half_up_to_cents():
    assert energy_amount(1000, Decimal("26.5")) == Decimal("0.27")  # half-even would say 0.26
    assert energy_amount(1000, Decimal("26.4999")) == Decimal("0.26")
    assert energy_amount(0, Decimal("30")) == Decimal("0.00")


def test_a_month_without_prices_has_no_amounts(site, make_scheme, measure):
    make_scheme("dynamic", sources=[site.pv])
    measure({site.pv: [100], site.apt1: [50], site.apt2: [50]}, start=OCTOBER)
    statement = consumer_statement(group=site.apt1, month="2026-10")
    assert (statement["amounts"], statement["lines"]) == (None, [])
    assert statement["provisional_quarter_hours"] == 1  # provisional values, allocated


def test_a_price_change_mid_month_is_split_into_its_own_line(october, make_scheme, measure):
    make_scheme(
        "dynamic",
        sources=[october.pv],
        effective_from=OCTOBER_16,
        prices={**PRICES, "price_local_ct_per_kwh": Decimal("30.0")},
        now=BEFORE,
    )
    measure({october.pv: [2000], october.apt1: [1000], october.apt2: [1000]}, start=OCTOBER_16, status="final")
    statement = consumer_statement(group=october.apt1, month="2026-10")
    lines = [
        (line["kind"], line["start"], line["end"], line["energy_wh"], line["price"], line["amount_eur"])
        for line in statement["lines"]
    ]
    assert lines == [
        ("local", OCTOBER, OCTOBER_16, 1300, Decimal("27.5"), Decimal("0.36")),
        ("local", OCTOBER_16, OCTOBER_END, 1000, Decimal("30.0"), Decimal("0.30")),
        # residual and base fee kept their price: one line each over the whole month
        ("residual", OCTOBER, OCTOBER_END, 1300, Decimal("38.9"), Decimal("0.51")),
        ("base_fee", OCTOBER, OCTOBER_END, None, Decimal("9.90"), Decimal("9.90")),
    ]
    assert statement["amounts"]["total_eur"] == Decimal("11.07")


def test_a_consumer_that_joined_mid_month_pays_its_part_of_the_base_fee(site, make_scheme, measure):
    make_scheme("dynamic", sources=[site.pv], consumers=[(site.apt1, 10000)], prices=PRICES)
    make_scheme(
        "dynamic",
        sources=[site.pv],
        consumers=[(site.apt1, 5000), (site.apt2, 5000)],
        effective_from=OCTOBER_16,
        prices=PRICES,
        now=BEFORE,
    )
    # APT-2 consumed before it joined: that is not its statement's consumption
    measure({site.pv: [0], site.apt1: [100], site.apt2: [700]}, start=OCTOBER, status="final")
    measure({site.pv: [300], site.apt1: [100], site.apt2: [200]}, start=OCTOBER_16, status="final")
    statement = consumer_statement(group=site.apt2, month="2026-10")
    assert statement["quarter_hours"] == 16 * 96 + 4  # 16 to 31 October, with the 25-hour day
    assert (statement["consumption_wh"], statement["local_wh"], statement["residual_wh"]) == (200, 200, 0)
    base_fee = [line for line in statement["lines"] if line["kind"] == "base_fee"]
    # 9.90 EUR x 1540 / 2980 quarter-hours = 5.1161... -> 5.12
    assert [(line["start"], line["amount_eur"]) for line in base_fee] == [(OCTOBER_16, Decimal("5.12"))]
    apt1 = consumer_statement(group=site.apt1, month="2026-10")
    assert apt1["quarter_hours"] == 2980
    assert [line["amount_eur"] for line in apt1["lines"] if line["kind"] == "base_fee"] == [Decimal("9.90")]


def test_march_has_the_short_day(site, make_scheme, measure):
    make_scheme("dynamic", sources=[site.pv])
    start, end = month_window("2026-03")
    assert (start, end) == (dt.datetime(2026, 2, 28, 23, tzinfo=UTC), dt.datetime(2026, 3, 31, 22, tzinfo=UTC))
    measure({site.pv: [10], site.apt1: [10], site.apt2: [10]}, start=start)
    statement = consumer_statement(group=site.apt1, month="2026-03")
    assert statement["quarter_hours"] == 31 * 96 - 4
    assert statement["missing_quarter_hours"] == 31 * 96 - 5


def test_a_whole_month_final_and_closed_is_final(site, make_scheme, measure, operator):
    make_scheme("dynamic", sources=[site.pv], prices=PRICES)
    quarters = 2980
    measure(
        {site.pv: [100] * quarters, site.apt1: [80] * quarters, site.apt2: [40] * quarters},
        start=OCTOBER,
        status="final",
    )
    statement = consumer_statement(group=site.apt1, month="2026-10")
    # per quarter-hour 100 Wh for 80 + 40: 66.67 / 33.33 -> 67 / 33
    assert (statement["consumption_wh"], statement["local_wh"], statement["residual_wh"]) == (
        80 * quarters,
        67 * quarters,
        13 * quarters,
    )
    assert (statement["missing_quarter_hours"], statement["provisional_quarter_hours"]) == (0, 0)
    assert statement["status"] == "provisional"  # every value final, but the month is still open
    group_close(group=site.apt1, actor=operator, until=OCTOBER_END)
    site.apt1.refresh_from_db()
    statement = consumer_statement(group=site.apt1, month="2026-10")
    assert (statement["status"], statement["closed"]) == ("final", True)
    assert all(day["status"] == "final" for day in statement["days"])


def test_substitute_values_count_as_provisional_quarter_hours(site, make_scheme, measure):
    make_scheme("dynamic", sources=[site.pv])
    measure({site.pv: [100, 100, 100], site.apt2: [50, 50, 50]}, start=OCTOBER, status="final")
    measure({site.apt1: [50, 50]}, start=OCTOBER, status="final")
    measure({site.apt1: [60]}, start=OCTOBER + dt.timedelta(minutes=30), quality="substitute")
    statement = consumer_statement(group=site.apt1, month="2026-10")
    assert statement["provisional_quarter_hours"] == 1
    assert statement["missing_quarter_hours"] == 2980 - 3
    assert statement["days"][0]["status"] == "provisional"
    other = consumer_statement(group=site.apt2, month="2026-10")
    assert other["provisional_quarter_hours"] == 1  # its share was computed from APT-1's substitute


def test_a_gap_is_missing_not_provisional(site, make_scheme, measure):
    make_scheme("dynamic", sources=[site.pv])
    measure({site.pv: [100, 100], site.apt2: [50, 50]}, start=OCTOBER)
    measure({site.apt1: [50]}, start=OCTOBER)  # the second quarter-hour of APT-1 is missing
    statement = consumer_statement(group=site.apt1, month="2026-10")
    assert (statement["provisional_quarter_hours"], statement["missing_quarter_hours"]) == (1, 2980 - 1)


def test_a_consumer_in_no_scheme_has_no_statement(site, make_scheme):
    make_scheme("dynamic", sources=[site.pv], consumers=[(site.apt1, 10000)])
    assert consumer_statement(group=site.apt2, month="2026-10") is None


@pytest.mark.parametrize("month", ["2026-13", "2026-1", "10/2026", "", "1999-12"])
def test_a_month_that_is_not_one_is_refused(site, month):
    with pytest.raises(InvalidInput):
        consumer_statement(group=site.apt1, month=month)


def test_the_site_lists_its_consumers_below_the_top(october, operator, tenant):
    for group in (october.apt1, october.apt2, october.pv):
        rule_change(group=group, actor=operator, targets=[(october.grid, 10000)], effective_from=T0)
    statements = site_statements(tenant=tenant, top=october.grid, month="2026-10")
    assert [s["consumer_code"] for s in statements] == ["APT-1", "APT-2"]
    assert [s["consumption_wh"] for s in statements] == [2600, 1200]
    assert site_statements(tenant=tenant, top=october.apt1, month="2026-10") == [
        consumer_statement(group=october.apt1, month="2026-10")
    ]
