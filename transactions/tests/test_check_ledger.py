import datetime as dt
import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from core.integrity import ledger_violations
from core.testing import T0
from transactions.models import LedgerLine
from transactions.services import booking_create


@pytest.fixture
def booking(tenant, operator, make_group):
    source, destination = make_group("PV", "source"), make_group("FLAT", "consumer")
    return booking_create(
        tenant=tenant,
        actor=operator,
        source=source,
        destination=destination,
        start=T0,
        end=T0 + dt.timedelta(hours=1),
        energy_wh=1001,
    ).booking


def run_check(*args) -> str:
    out = StringIO()
    call_command("check_ledger", *args, stdout=out)
    return out.getvalue()


def test_clean_ledger_passes(booking):
    assert "Ledger is consistent (" in run_check()
    assert "Ledger is consistent (" in run_check("--tenant", booking.tenant.code)


def test_line_that_no_longer_sums_to_its_booking_is_reported(booking):
    line = booking.lines.order_by("quarter_start").first()
    LedgerLine.objects.filter(pk=line.pk).update(energy_wh=line.energy_wh + 1)
    with pytest.raises(CommandError, match="ledger violation"):
        run_check()
    # The tampered line also no longer matches the materialised imbalances.
    assert {violation.check for violation in ledger_violations()} == {"lines_sum", "imbalance"}


def test_line_crossing_tenants_breaks_zero_sum_and_tenancy(booking, other_tenant, make_group):
    foreign = make_group("FOREIGN", "consumer", tenant=other_tenant)
    LedgerLine.objects.filter(booking=booking).update(destination=foreign)
    checks = {violation.check for violation in ledger_violations()}
    assert {"zero_sum", "tenancy", "line_copy"} <= checks
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("check_ledger", stdout=out)
    assert "FAIL zero_sum" in out.getvalue()


def test_status_disagreement_is_reported(booking):
    LedgerLine.objects.filter(booking=booking).update(is_final=True)
    assert {violation.check for violation in ledger_violations()} == {"status", "imbalance"}


def test_unknown_tenant_is_a_clear_error(db):
    with pytest.raises(CommandError, match="No tenant"):
        run_check("--tenant", "nope")


@pytest.fixture
def quarter_booking(tenant, operator, make_group):
    """A booking of one quarter-hour: one line, found by the line-by-line statement alone."""
    return booking_create(
        tenant=tenant,
        actor=operator,
        source=make_group("WIND", "source"),
        destination=make_group("SHOP", "consumer"),
        start=T0,
        end=T0 + dt.timedelta(minutes=15),
        energy_wh=40,
    ).booking


def ledger_details(check):
    return [violation.detail for violation in ledger_violations() if violation.check == check]


def test_one_quarter_booking_with_a_line_of_other_energy(quarter_booking):
    LedgerLine.objects.filter(booking=quarter_booking).update(energy_wh=41)
    assert ledger_details("lines_sum") == [f"booking {quarter_booking.pk}: lines sum to 41 Wh, booking says 40 Wh"]


def test_booking_without_lines(quarter_booking, booking):
    LedgerLine.objects.filter(booking=booking).delete()
    assert ledger_details("lines_sum") == [f"booking {booking.pk}: lines sum to 0 Wh, booking says 1001 Wh"]


def test_line_outside_its_booking_and_lines_of_a_longer_booking_that_do_not_sum(booking, quarter_booking):
    first = booking.lines.order_by("quarter_start").first()
    LedgerLine.objects.filter(pk=first.pk).update(quarter_start=T0 + dt.timedelta(hours=2))
    assert ledger_details("lines_sum") == [
        f"booking {booking.pk}: lines sum to 1001 Wh, booking says 1001 Wh, 1 line(s) outside its period"
    ]
    LedgerLine.objects.filter(pk=first.pk).delete()
    assert ledger_details("lines_sum") == [
        f"booking {booking.pk}: lines sum to {1001 - first.energy_wh} Wh, booking says 1001 Wh"
    ]


def test_a_copied_column_that_disagrees(quarter_booking, make_group):
    LedgerLine.objects.filter(booking=quarter_booking).update(source=make_group("OTHER", "source"))
    assert ledger_details("line_copy") == [f"booking {quarter_booking.pk}: 1 line(s) disagree with it"]


def test_each_check_says_how_long_it_took(booking):
    assert re.search(r"^ok   lines_against_bookings \(\d+\.\d s\)$", run_check(), re.MULTILINE)
