"""The allocation engine over the ledger: bookings written, replaced, finalized, reversed."""

import datetime as dt

from allocation.models import AllocationBooking
from core.integrity import ledger_violations
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
