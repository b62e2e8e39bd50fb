"""The allocation engine over the ledger: bookings written, replaced, finalized, reversed."""

import datetime as dt

import pytest

from allocation.models import AllocationBooking
from allocation.selectors import consumer_allocation
from core.integrity import ledger_violations
from core.quarters import local_date, local_day_bounds
from core.testing import T0
from transactions.models import Booking, BookingKind, LedgerLine


def flows():
    """``{(source code, destination code, quarter): (Wh, status)}`` of the current allocation bookings."""
    keys = AllocationBooking.objects.select_related("booking__source", "booking__destination", "booking")
    return {
        (k.booking.source.code, k.booking.destination.code, k.quarter_start): (k.booking.energy_wh, k.booking.status)
        for k in keys
    }


def test_measurements_become_allocation_bookings(site, make_scheme, measure):
    make_scheme("dynamic")
    result = measure({site.pv: [300], site.battery: [500], site.apt1: [400], site.apt2: [200]})
    assert (result.created, result.rejected) == (4, [])
    assert flows() == {
        ("PV", "APT-1", T0): (200, "provisional"),
        ("PV", "APT-2", T0): (100, "provisional"),
        ("BAT", "APT-1", T0): (200, "provisional"),
        ("BAT", "APT-2", T0): (100, "provisional"),
        ("BAT", "GRID", T0): (200, "provisional"),
    }
    assert not list(ledger_violations())


def test_a_gap_is_not_allocated_and_a_rerun_changes_nothing(site, make_scheme, measure):
    make_scheme("dynamic")
    measure({site.pv: [300, 300], site.battery: [0, 0], site.apt1: [400, 400], site.apt2: [200]})
    second = T0 + dt.timedelta(minutes=15)
    assert not [key for key in flows() if key[2] == second]  # APT-2 has no value there: a gap
    before = sorted(Booking.objects.values_list("pk", flat=True))
    measure({site.apt2: [200]})  # identical: unchanged, nothing rewritten
    assert sorted(Booking.objects.values_list("pk", flat=True)) == before


def test_a_substitute_replaced_by_a_true_final_value_reallocates_and_finalizes(site, make_scheme, measure):
    make_scheme("dynamic", sources=[site.pv])
    measure({site.pv: [100], site.apt1: [50], site.apt2: [50]}, quality="substitute")
    assert flows()[("PV", "APT-1", T0)] == (50, "provisional")
    measure({site.pv: [80], site.apt1: [60], site.apt2: [40]}, status="final")
    assert flows() == {
        ("PV", "APT-1", T0): (48, "final"),
        ("PV", "APT-2", T0): (32, "final"),
        ("GRID", "APT-1", T0): (12, "final"),
        ("GRID", "APT-2", T0): (8, "final"),
    }
    assert LedgerLine.objects.filter(is_final=False).count() == 0
    assert not list(ledger_violations())


def test_a_final_quarter_hour_is_corrected_by_reversal(site, make_scheme, measure, tenant, operator):
    from transactions.models import ClarificationCase
    from transactions.services import clarification_resolve

    make_scheme("dynamic", sources=[site.pv])
    measure({site.pv: [100], site.apt1: [50], site.apt2: [50]}, status="final")
    original = Booking.objects.get(kind=BookingKind.ALLOCATION, destination=site.apt1)
    refused = measure({site.apt1: [70]}, status="final")
    assert refused.rejected[0]["code"] == "MEASUREMENT_FINAL"
    case = ClarificationCase.objects.get()
    assert flows()[("PV", "APT-1", T0)] == (50, "final")  # nothing changed yet
    clarification_resolve(case=case, actor=operator, action="rebook", note="meter read again")
    # 100 Wh by 70:50 -> 58.3/41.7 -> 58/42; the grid supplies the 12 and 8 Wh not covered.
    assert flows() == {
        ("PV", "APT-1", T0): (58, "final"),
        ("PV", "APT-2", T0): (42, "final"),
        ("GRID", "APT-1", T0): (12, "final"),
        ("GRID", "APT-2", T0): (8, "final"),
    }
    reversal = Booking.objects.get(reverses=original)
    assert (reversal.source_id, reversal.destination_id, reversal.energy_wh) == (site.apt1.pk, site.pv.pk, 50)
    assert not list(ledger_violations())


def test_check_ledger_catches_a_broken_identity_and_a_lost_key(site, make_scheme, measure):
    make_scheme("dynamic", sources=[site.pv])
    measure({site.pv: [100], site.apt1: [60], site.apt2: [40]})
    assert not list(ledger_violations())
    line = LedgerLine.objects.get(source=site.pv, destination=site.apt1)
    LedgerLine.objects.filter(pk=line.pk).update(energy_wh=59)
    assert {v.check for v in ledger_violations()} >= {"allocation_identity"}
    LedgerLine.objects.filter(pk=line.pk).update(energy_wh=60)
    AllocationBooking.objects.filter(booking_id=line.booking_id).delete()
    checks = {v.check for v in ledger_violations()}
    assert "allocation_key" in checks and "allocation_identity" in checks


@pytest.mark.parametrize(("day", "quarters"), [(dt.date(2026, 3, 29), 92), (dt.date(2026, 10, 25), 100)])
def test_a_dst_day_is_allocated_in_each_of_its_quarter_hours(site, make_scheme, measure, day, quarters):
    start, end = local_day_bounds(day)
    make_scheme("dynamic", sources=[site.pv])
    # 100 Wh of PV for 60 + 60 Wh: 50 each from PV, 10 each from the grid, every quarter-hour of the day.
    measure({site.pv: [100] * quarters, site.apt1: [60] * quarters, site.apt2: [60] * quarters}, start=start)
    day_flows = {key: value for key, value in flows().items() if start <= key[2] < end}
    assert len(day_flows) == 4 * quarters
    split = consumer_allocation(group=site.apt1, start=start, end=end, resolution="1d")
    assert [(i["consumption_wh"], i["local_wh"], i["residual_wh"]) for i in split["intervals"]] == [
        (60 * quarters, 50 * quarters, 10 * quarters)
    ]
    assert not list(ledger_violations())


def test_a_validity_that_would_cut_off_measurements_is_refused(site, measure, operator):
    from balance_groups.services import group_update
    from core.errors import Conflict

    measure({site.apt1: [10]}, start=T0 + dt.timedelta(days=3))
    with pytest.raises(Conflict, match="measurements outside"):
        group_update(group=site.apt1, actor=operator, valid_until=T0 + dt.timedelta(days=1))


def test_check_ledger_catches_a_measurement_of_a_group_of_another_tenant(site, measure, other_tenant):
    from allocation.models import Measurement
    from balance_groups.factories import GroupFactory

    measure({site.apt1: [10]})
    foreign = GroupFactory(tenant=other_tenant, code="FREMD", kind="consumer")
    Measurement.objects.update(group=foreign)
    assert [v.check for v in ledger_violations()] == ["measurement_group"]


def test_day_totals_follow_the_allocation_and_check_ledger_watches_them(site, make_scheme, measure):
    from allocation.models import DayFlow, DayValue

    make_scheme("dynamic", sources=[site.pv])
    measure({site.pv: [100, 100], site.apt1: [60, 60], site.apt2: [40, 40]})
    day = local_day_bounds(local_date(T0))[0]
    flows = {
        (f.source.code, f.destination.code): (f.energy_wh, f.provisional)
        for f in DayFlow.objects.select_related("source", "destination")
    }
    assert flows == {("PV", "APT-1"): (120, 2), ("PV", "APT-2"): (80, 2)}
    assert {v.group.code: v.energy_wh for v in DayValue.objects.filter(day_start=day).select_related("group")} == {
        "PV": 200,
        "APT-1": 120,
        "APT-2": 80,
    }
    measure({site.apt1: [80]}, status="final")  # replaced: 100 by 80:40 -> 67/33, the day totals follow
    assert DayFlow.objects.get(source=site.pv, destination=site.apt1).energy_wh == 67 + 60
    assert not list(ledger_violations())
    DayFlow.objects.filter(destination=site.apt1).update(energy_wh=1)
    assert {v.check for v in ledger_violations()} == {"allocation_day_flow"}


def test_a_quarter_hour_not_over_yet_is_no_gap(site, make_scheme):
    from django.utils import timezone

    from allocation.selectors import scheme_allocation
    from core.quarters import floor_quarter

    scheme = make_scheme("dynamic")
    now = floor_quarter(timezone.now())  # the quarter-hour running now starts here
    window = {"start": now - dt.timedelta(hours=1), "end": now + dt.timedelta(hours=1), "resolution": "15min"}
    gaps = [interval["gaps"] for interval in scheme_allocation(scheme=scheme, **window)["intervals"]]
    assert gaps == [1, 1, 1, 1, 0, 0, 0, 0]  # the four past quarter-hours lack values; the rest is not over


def test_an_allocation_booking_is_not_finalized_by_hand(site, make_scheme, measure, operator):
    from core.errors import Conflict
    from transactions.services import booking_finalize, bookings_finalize_until

    make_scheme("dynamic", sources=[site.pv])
    measure({site.pv: [100], site.apt1: [50], site.apt2: [50]})
    flow = Booking.objects.filter(kind=BookingKind.ALLOCATION, destination=site.apt1).first()
    with pytest.raises(Conflict, match="becomes final by itself once all its inputs are final"):
        booking_finalize(booking=flow, actor=operator)
    assert bookings_finalize_until(group=site.apt1, actor=operator, until=T0 + dt.timedelta(days=1)) == 0
    assert set(Booking.objects.filter(kind=BookingKind.ALLOCATION).values_list("status", flat=True)) == {"provisional"}
    assert not list(ledger_violations())
