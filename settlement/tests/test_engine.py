"""Worked examples of the settlement engine, with exact numbers."""

import datetime as dt

import pytest

from core.quarters import local_day_bounds
from settlement.models import Imbalance, RunStatus, SettlementBooking
from settlement.selectors import group_balance, imbalance_list
from settlement.services import settlement_run
from settlement.tests.conftest import at
from transactions.models import Booking, BookingKind, LedgerLine
from transactions.services import booking_finalize

pytestmark = pytest.mark.django_db


def settlement_lines(child, parent=None):
    """(quarter HH:MM, signed Wh into the child) of the child's settlement bookings."""
    links = SettlementBooking.objects.filter(child=child)
    if parent is not None:
        links = links.filter(parent=parent)
    rows = []
    for line in LedgerLine.objects.filter(booking__in=links.values("booking")).order_by("quarter_start", "id"):
        sign = 1 if line.destination_id == child.pk else -1
        rows.append((f"{line.quarter_start:%H:%M}", sign * line.energy_wh))
    return rows


def nets(group, start, end):
    return [row["net_wh"] for row in group_balance(group=group, start=start, end=end)["intervals"]]


def test_15min_rule_settles_every_quarter_hour_onto_the_parent(site, rule, book, clean_ledger):
    rule(site["PV"], [(site["HOUSE"], 10000)])
    book(site["PV"], site["APT"], at(10), at(11), 1001)  # lines 251, 250, 250, 250

    # PV delivered 1001 Wh, so HOUSE delivers it back to PV quarter by quarter.
    assert settlement_lines(site["PV"]) == [("10:00", 251), ("10:15", 250), ("10:30", 250), ("10:45", 250)]
    assert nets(site["PV"], at(10), at(11)) == [0, 0, 0, 0]
    assert nets(site["HOUSE"], at(10), at(11)) == [-251, -250, -250, -250]
    assert nets(site["APT"], at(10), at(11)) == [251, 250, 250, 250]  # no rule: the residual stays
    assert Booking.objects.filter(kind=BookingKind.SETTLEMENT).count() == 4
    clean_ledger()


def test_hourly_rule_nets_zero_per_hour_not_per_quarter(site, rule, book, clean_ledger):
    rule(site["PV"], [(site["HOUSE"], 10000)], interval="1h")
    book(site["PV"], site["APT"], at(10), at(10, 30), 1001)  # lines 501, 500

    # One booking over the hour: 1001 Wh spread 251, 250, 250, 250.
    assert settlement_lines(site["PV"]) == [("10:00", 251), ("10:15", 250), ("10:30", 250), ("10:45", 250)]
    assert nets(site["PV"], at(10), at(11)) == [-250, -250, 250, 250]
    assert group_balance(group=site["PV"], start=at(10), end=at(11))["net_wh"] == 0
    settlement = Booking.objects.get(kind=BookingKind.SETTLEMENT)
    assert (settlement.start, settlement.end, settlement.energy_wh) == (at(10), at(11), 1001)
    clean_ledger()


def test_daily_rule_over_the_spring_dst_day_spreads_over_92_quarters(site, rule, book, clean_ledger):
    spring = dt.date(2026, 3, 29)
    day_start, day_end = local_day_bounds(spring)
    assert (day_start, day_end) == (
        dt.datetime(2026, 3, 28, 23, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 29, 22, tzinfo=dt.UTC),
    )
    rule(site["PV"], [(site["HOUSE"], 10000)], interval="1d")
    book(site["PV"], site["APT"], day_start + dt.timedelta(hours=13), day_start + dt.timedelta(hours=14), 9201)

    settlement = Booking.objects.get(kind=BookingKind.SETTLEMENT)
    assert (settlement.start, settlement.end, settlement.energy_wh) == (day_start, day_end, 9201)
    parts = list(settlement.lines.order_by("quarter_start").values_list("energy_wh", flat=True))
    assert len(parts) == 92
    assert parts[0] == 101 and set(parts[1:]) == {100}  # 9201 = 92 * 100 + 1
    day = group_balance(group=site["PV"], start=day_start, end=day_end, resolution="1d")
    assert day["net_wh"] == 0 and len(day["intervals"]) == 1
    clean_ledger()


def test_60_40_split_onto_two_parents_with_an_odd_total(site, rule, book, clean_ledger):
    rule(site["PV"], [(site["H1"], 6000), (site["H2"], 4000)])
    book(site["PV"], site["APT"], at(10), at(10, 15), 1001)

    # 1001 * 0.6 = 600.6 and 1001 * 0.4 = 400.4: the remaining Wh goes to the larger remainder (H1).
    assert settlement_lines(site["PV"], site["H1"]) == [("10:00", 601)]
    assert settlement_lines(site["PV"], site["H2"]) == [("10:00", 400)]
    assert nets(site["PV"], at(10), at(10, 15)) == [0]
    assert nets(site["H1"], at(10), at(10, 15)) == [-601]
    assert nets(site["H2"], at(10), at(10, 15)) == [-400]
    clean_ledger()


def test_a_tie_in_the_split_goes_to_the_target_listed_first(site, rule, book, clean_ledger):
    rule(site["PV"], [(site["H1"], 472), (site["H2"], 9528)])  # the smaller share listed first
    book(site["PV"], site["APT"], at(10), at(10, 15), 625)

    # 625 * 0.0472 = 29.5 and 625 * 0.9528 = 595.5: equal remainders, so the first-listed target (H1)
    # gets the remaining Wh, whatever the shares.
    assert settlement_lines(site["PV"], site["H1"]) == [("10:00", 30)]
    assert settlement_lines(site["PV"], site["H2"]) == [("10:00", 595)]
    clean_ledger()


def test_three_levels_settle_in_one_run(site, rule, book, broker_mode, clean_ledger):
    rule(site["APT"], [(site["FLOOR"], 10000)])
    rule(site["FLOOR"], [(site["HOUSE"], 10000)])
    rule(site["PV"], [(site["HOUSE"], 10000)])
    book(site["PV"], site["APT"], at(10), at(10, 15), 800)
    assert not SettlementBooking.objects.exists()  # only marked dirty so far

    run = settlement_run(tenant=site["PV"].tenant, start=at(10), end=at(11))

    assert run.status == RunStatus.SUCCEEDED
    assert run.bookings_created == 3
    assert settlement_lines(site["APT"]) == [("10:00", -800)]  # APT -> FLOOR
    assert settlement_lines(site["FLOOR"]) == [("10:00", -800)]  # FLOOR -> HOUSE, seen in the same run
    assert settlement_lines(site["PV"]) == [("10:00", 800)]  # HOUSE -> PV
    for code in ("APT", "FLOOR", "PV", "HOUSE"):
        assert nets(site[code], at(10), at(10, 15)) == [0], code
    clean_ledger()


def test_provisional_settlement_becomes_final_after_its_last_input(site, rule, book, operator, clean_ledger):
    rule(site["PV"], [(site["HOUSE"], 10000)])
    first = book(site["PV"], site["APT"], at(10), at(10, 15), 300)
    second = book(site["APT2"], site["PV"], at(10), at(10, 15), 100, status="final")
    settlement = Booking.objects.get(kind=BookingKind.SETTLEMENT)
    assert (settlement.status, settlement.energy_wh) == ("provisional", 200)
    assert imbalance_list(tenant=site["PV"].tenant, group=site["PV"]).get().status == "provisional"

    booking_finalize(booking=first, actor=operator)

    settlement.refresh_from_db()
    assert (settlement.status, settlement.energy_wh) == ("final", 200)
    assert list(settlement.lines.values_list("is_final", flat=True)) == [True]
    pv = imbalance_list(tenant=site["PV"].tenant, group=site["PV"]).get()
    assert (pv.inflow_wh, pv.outflow_wh, pv.net_wh, pv.status) == (300, 300, 0, "final")
    assert second.status == "final"
    clean_ledger()


def test_changed_input_recomputes_a_provisional_settlement_under_its_key(site, rule, book, clean_ledger):
    rule(site["PV"], [(site["HOUSE"], 10000)])
    book(site["PV"], site["APT"], at(10), at(10, 15), 300, external_id="m-1")
    key = SettlementBooking.objects.get()
    assert (key.booking.source_id, key.booking.energy_wh) == (site["HOUSE"].pk, 300)

    book(site["APT"], site["PV"], at(10), at(10, 15), 500, external_id="m-1")  # replaced: now the other way

    again = SettlementBooking.objects.get()  # still one key, recomputed from the new input
    assert (again.rule_id, again.parent_id, again.window_start, again.revision) == (
        key.rule_id,
        key.parent_id,
        key.window_start,
        0,
    )
    assert (again.booking.source_id, again.booking.destination_id, again.booking.energy_wh) == (
        site["PV"].pk,
        site["HOUSE"].pk,
        500,
    )
    assert Booking.objects.filter(kind=BookingKind.SETTLEMENT).count() == 1
    clean_ledger()


def test_input_after_a_final_settlement_is_settled_by_a_new_revision(site, rule, book, clean_ledger):
    rule(site["PV"], [(site["HOUSE"], 10000)])
    book(site["PV"], site["APT"], at(10), at(10, 15), 300, status="final")
    final = Booking.objects.get(kind=BookingKind.SETTLEMENT, status="final")

    book(site["PV"], site["APT2"], at(10), at(10, 15), 50)

    final.refresh_from_db()
    assert (final.status, final.energy_wh) == ("final", 300)  # never changes again
    late = SettlementBooking.objects.get(revision=1).booking
    assert (late.status, late.energy_wh, late.source_id) == ("provisional", 50, site["HOUSE"].pk)
    assert nets(site["PV"], at(10), at(10, 15)) == [0]
    clean_ledger()


def test_rule_change_takes_effect_at_the_next_quarter_hour_only(site, rule, book, clean_ledger):
    rule(site["PV"], [(site["H1"], 10000)])
    # Changed at 10:07: the new version starts at 10:15, the 10:00 quarter stays with H1.
    changed = rule(site["PV"], [(site["H2"], 10000)], effective_from=None, now=at(10, 7))
    assert changed.effective_from == at(10, 15)
    book(site["PV"], site["APT"], at(10), at(10, 30), 1000)

    assert settlement_lines(site["PV"], site["H1"]) == [("10:00", 500)]
    assert settlement_lines(site["PV"], site["H2"]) == [("10:15", 500)]
    clean_ledger()


def test_windows_that_have_not_ended_are_not_settled(site, rule, book, broker_mode):
    rule(site["PV"], [(site["HOUSE"], 10000)], interval="1h")
    book(site["PV"], site["APT"], at(10), at(10, 15), 100)

    settlement_run(tenant=site["PV"].tenant, start=at(10), end=at(11), now=at(10, 50))
    assert not SettlementBooking.objects.exists()
    settlement_run(tenant=site["PV"].tenant, start=at(10), end=at(11), now=at(11))
    assert SettlementBooking.objects.get().booking.energy_wh == 100


def test_run_repeated_changes_nothing(site, rule, book, broker_mode, clean_ledger):
    rule(site["PV"], [(site["H1"], 6000), (site["H2"], 4000)], interval="1h")
    rule(site["APT"], [(site["HOUSE"], 10000)])
    book(site["PV"], site["APT"], at(10), at(12), 12345)
    first = settlement_run(tenant=site["PV"].tenant, start=at(0), end=at(20))
    ledger = sorted(LedgerLine.objects.values_list("booking_id", "quarter_start", "energy_wh", "is_final"))

    second = settlement_run(tenant=site["PV"].tenant, start=at(0), end=at(20))

    assert first.bookings_created == 2 * 2 + 8
    assert (second.bookings_created, second.bookings_updated, second.bookings_deleted) == (0, 0, 0)
    assert sorted(LedgerLine.objects.values_list("booking_id", "quarter_start", "energy_wh", "is_final")) == ledger
    assert second.lines_read == len(ledger)
    clean_ledger()


def test_exception_halfway_leaves_nothing_partial(site, rule, book, broker_mode, monkeypatch, clean_ledger):
    rule(site["APT"], [(site["FLOOR"], 10000)])
    rule(site["FLOOR"], [(site["HOUSE"], 10000)])
    book(site["GRID"], site["APT"], at(10), at(10, 15), 700)
    from settlement.engine import units

    real = units.apply_level
    calls = []

    def failing(**kwargs):
        calls.append(kwargs["group_ids"])
        real(**kwargs)
        if len(calls) == 1:  # after the first level was written, before the second
            raise RuntimeError("injected failure")

    monkeypatch.setattr(units, "apply_level", failing)
    with pytest.raises(RuntimeError):
        settlement_run(tenant=site["APT"].tenant, start=at(10), end=at(11))

    assert not SettlementBooking.objects.exists()
    assert not Booking.objects.filter(kind=BookingKind.SETTLEMENT).exists()
    assert not Imbalance.objects.exists()
    failed = site["APT"].tenant.settlement_runs.get()
    assert failed.status == RunStatus.FAILED and "injected failure" in failed.error

    monkeypatch.setattr(units, "apply_level", real)
    run = settlement_run(tenant=site["APT"].tenant, start=at(10), end=at(11))
    assert run.bookings_created == 2
    assert nets(site["FLOOR"], at(10), at(10, 15)) == [0]
    clean_ledger()


def test_imbalances_are_materialised_and_ordered(site, book):
    book(site["GRID"], site["APT"], at(10), at(10, 30), 101)
    book(site["PV"], site["APT"], at(10, 15), at(10, 30), 7, status="final")
    rows = list(imbalance_list(tenant=site["GRID"].tenant, start=at(10), end=at(11)))
    assert [
        (r.group.code, f"{r.quarter_start:%H:%M}", r.inflow_wh, r.outflow_wh, r.net_wh, r.status) for r in rows
    ] == [
        ("APT", "10:00", 51, 0, 51, "provisional"),
        ("GRID", "10:00", 0, 51, -51, "provisional"),
        ("APT", "10:15", 57, 0, 57, "provisional"),
        ("GRID", "10:15", 0, 50, -50, "provisional"),
        ("PV", "10:15", 0, 7, -7, "final"),
    ]
    assert [r.group.code for r in imbalance_list(tenant=site["GRID"].tenant, group="PV")] == ["PV"]
    assert imbalance_list(tenant=site["GRID"].tenant, start=at(10, 15), end=at(10, 30)).count() == 3


def test_daily_rule_over_the_autumn_dst_day_spreads_over_100_quarters(site, rule, book, clean_ledger):
    day_start, day_end = local_day_bounds(dt.date(2026, 10, 25))
    rule(site["PV"], [(site["HOUSE"], 10000)], interval="1d")
    book(site["APT"], site["PV"], day_start + dt.timedelta(hours=5), day_start + dt.timedelta(hours=6), 1050)

    settlement = Booking.objects.get(kind=BookingKind.SETTLEMENT)
    assert (settlement.start, settlement.end) == (day_start, day_end)
    assert (settlement.source_id, settlement.destination_id) == (site["PV"].pk, site["HOUSE"].pk)
    parts = list(settlement.lines.order_by("quarter_start").values_list("energy_wh", flat=True))
    assert len(parts) == 100 and parts[:50] == [11] * 50 and parts[50:] == [10] * 50  # 1050 = 100 * 10 + 50
    clean_ledger()


def test_deferred_block_settles_once_at_its_end(site, rule, book, clean_ledger):
    from settlement.dirty import deferred

    rule(site["PV"], [(site["HOUSE"], 10000)])
    with deferred():
        book(site["PV"], site["APT"], at(10), at(10, 15), 10)
        book(site["PV"], site["APT"], at(10), at(10, 15), 20)
        assert not SettlementBooking.objects.exists()
    assert settlement_lines(site["PV"]) == [("10:00", 30)]
    clean_ledger()
