"""A late value for a closed month: booked as a correction in the first open quarter-hour."""

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from allocation.models import AllocationBooking, Correction, CorrectionLine, Measurement
from allocation.selectors import correction_lines
from allocation.statements import consumer_statement
from balance_groups.models import AuditAction, AuditEntry
from balance_groups.services import group_close
from core.errors import GroupNotValid, InvalidInput
from core.integrity import ledger_violations
from core.testing import T0, iso
from settlement.models import DirtyDay, Imbalance
from transactions.models import Booking, BookingKind, ClarificationCase, ClarificationStatus, LedgerLine
from transactions.services import clarification_resolve

Q = T0 + dt.timedelta(days=14, hours=10)  # 2026-01-15 10:00 UTC, in January
Q2 = Q + dt.timedelta(minutes=15)
FEB = dt.datetime(2026, 1, 31, 23, tzinfo=dt.UTC)  # 2026-02-01 00:00 in Berlin: the first open quarter-hour
MAR = dt.datetime(2026, 2, 28, 23, tzinfo=dt.UTC)
AFTER_FEB = FEB + dt.timedelta(minutes=15)


def close_january(site, operator, *groups):
    for group in groups or (site.pv, site.apt1, site.apt2, site.grid):
        group_close(group=group, actor=operator, until=FEB)


@pytest.fixture
def closed_january(site, make_scheme, measure, operator):
    make_scheme("dynamic", sources=[site.pv])
    # Two quarter-hours of PV 100 Wh for 60 + 40 Wh: all of it local, nothing from the grid.
    measure({site.pv: [100, 100], site.apt1: [60, 60], site.apt2: [40, 40]}, start=Q, status="final")
    close_january(site, operator)
    return site


def late(measure, group, wh, start=Q):
    """Send a value for the closed quarter-hour ``start``: refused, and kept as a case (returned)."""
    result = measure({group: [wh]}, start=start, status="final")
    assert result.rejected[0]["code"] == "PERIOD_CLOSED"
    return ClarificationCase.objects.get(payload__group=group.code, payload__start=iso(start), payload__energy_wh=wh)


def rebook(case, operator, note=""):
    return clarification_resolve(case=case, actor=operator, action="rebook", note=note)


def january():
    """Everything of the closed month: its measurements and its allocation bookings with their lines."""
    return (
        sorted(Measurement.objects.values_list("group__code", "quarter_start", "energy_wh", "status", "updated_at")),
        sorted(AllocationBooking.objects.values_list("booking_id", "booking__energy_wh", "quarter_start")),
        sorted(
            LedgerLine.objects.filter(quarter_start__lt=FEB).values_list("booking_id", "quarter_start", "energy_wh")
        ),
    )


def booked():
    """The correction bookings ``(source code, destination code, Wh)``; every one final, at FEB."""
    rows = Booking.objects.filter(kind=BookingKind.CORRECTION).select_related("source", "destination")
    assert {(b.start, b.end, b.status) for b in rows} <= {(FEB, AFTER_FEB, "final")}
    return sorted((b.source.code, b.destination.code, b.energy_wh) for b in rows)


def lines_of(case):
    return sorted(
        (line.source.code, line.destination.code, line.old_wh, line.new_wh)
        for line in CorrectionLine.objects.filter(correction__case=case).select_related("source", "destination")
    )


def test_a_late_value_is_booked_as_reversal_and_new_allocation_in_the_next_month(closed_january, measure, operator):
    site = closed_january
    before = january()
    case = late(measure, site.apt1, 90)
    resolved = rebook(case, operator, note="meter read again")
    # 100 Wh by 90:40 -> 69.23/30.77 -> 69 + 30, the Wh left to the larger remainder (APT-2: 100 vs 30)
    # -> 69/31; the grid supplies the 21 and 9 Wh not covered.
    assert booked() == [
        ("APT-1", "PV", 60),
        ("APT-2", "PV", 40),
        ("GRID", "APT-1", 21),
        ("GRID", "APT-2", 9),
        ("PV", "APT-1", 69),
        ("PV", "APT-2", 31),
    ]
    assert lines_of(case) == [
        ("GRID", "APT-1", 0, 21),
        ("GRID", "APT-2", 0, 9),
        ("PV", "APT-1", 60, 69),
        ("PV", "APT-2", 40, 31),
    ]
    names = set(Booking.objects.filter(kind=BookingKind.CORRECTION).values_list("name", flat=True))
    assert "Correction of 2026-01 (2026-01-15 10:00 UTC): PV -> APT-1, reversal of 60 Wh" in names
    assert "Correction of 2026-01 (2026-01-15 10:00 UTC): PV -> APT-1, 69 Wh" in names
    assert january() == before  # nothing of January changed
    assert resolved.status == ClarificationStatus.REBOOKED
    assert resolved.resolution_note == (
        "The value of 2026-01-15 11:00 (Europe/Berlin) is booked as a correction of 2026-01 in the period from "
        "2026-02-01 00:00 (Europe/Berlin): 4 flows changed. meter read again"
    )
    correction = Correction.objects.get(case=case)
    assert (correction.quarter_start, correction.booked_start, correction.energy_wh) == (Q, FEB, 90)
    assert not AllocationBooking.objects.filter(booking__kind=BookingKind.CORRECTION).exists()
    assert AuditEntry.objects.filter(action=AuditAction.MEASUREMENT_CORRECT, object_id=str(correction.pk)).exists()
    # February 1st was settled again: APT-1 takes 69 + 21 and gives back 60 there; PV nets to zero.
    assert not DirtyDay.objects.exists()
    nets = dict(Imbalance.objects.filter(quarter_start=FEB).values_list("group__code", "net_wh"))
    assert (nets["APT-1"], nets["APT-2"], nets["PV"], nets["GRID"]) == (30, 0, 0, -30)
    assert not list(ledger_violations())  # zero-sum, the lines against their bookings, the identities


def test_a_second_late_value_builds_on_the_first(closed_january, measure, operator):
    site = closed_january
    rebook(late(measure, site.apt1, 90), operator)
    second = late(measure, site.apt2, 10)
    rebook(second, operator)
    # Now PV 100 covers 90 + 10 exactly: the first correction's 69/31 and 21/9 are taken back.
    assert lines_of(second) == [
        ("GRID", "APT-1", 21, 0),
        ("GRID", "APT-2", 9, 0),
        ("PV", "APT-1", 69, 90),
        ("PV", "APT-2", 31, 10),
    ]
    assert not list(ledger_violations())
    # The February statement's correction lines: the changes against January as it was closed.
    split = correction_lines(consumer_ids=[site.apt1.pk, site.apt2.pk], start=FEB, end=MAR)
    scheme = Correction.objects.get(case=second).scheme_id
    assert split == {
        site.apt1.pk: [{"corrects": "2026-01", "scheme": scheme, "local_wh": 30, "residual_wh": 0, "quarter_hours": 1}],
        site.apt2.pk: [
            {"corrects": "2026-01", "scheme": scheme, "local_wh": -30, "residual_wh": 0, "quarter_hours": 1}
        ],
    }
    assert correction_lines(consumer_ids=[site.apt1.pk], start=MAR, end=MAR + dt.timedelta(days=31)) == {}
    assert correction_lines(consumer_ids=[site.apt1.pk], start=T0, end=FEB) == {}  # booked in February only


def test_correction_lines_count_the_corrected_quarter_hours(closed_january, measure, operator):
    site = closed_january
    rebook(late(measure, site.apt1, 90), operator)
    rebook(late(measure, site.apt1, 90, start=Q2), operator)
    split = correction_lines(consumer_ids=[site.apt1.pk, site.apt2.pk], start=FEB, end=MAR)
    # Each quarter-hour: APT-1 local 60 -> 69, residual 0 -> 21; APT-2 local 40 -> 31, residual 0 -> 9.
    assert [(e["corrects"], e["local_wh"], e["residual_wh"], e["quarter_hours"]) for e in split[site.apt1.pk]] == [
        ("2026-01", 18, 42, 2)
    ]
    assert [(e["local_wh"], e["residual_wh"], e["quarter_hours"]) for e in split[site.apt2.pk]] == [(-18, 18, 2)]
    assert not list(ledger_violations())


def test_a_late_value_for_a_gap_books_the_whole_allocation(site, make_scheme, measure, operator):
    make_scheme("dynamic", sources=[site.pv])
    measure({site.pv: [100], site.apt1: [80]}, start=Q, status="final")  # APT-2's value never came
    close_january(site, operator)
    assert not AllocationBooking.objects.exists()  # a gap: nothing allocated in January
    case = late(measure, site.apt2, 40)
    rebook(case, operator)
    # 100 Wh by 80:40 -> 66.67/33.33 -> 66 + 33, the Wh left to APT-1 (remainder 80 vs 40) -> 67/33;
    # the grid supplies 13 and 7 Wh. Nothing was booked before: no reversal.
    assert booked() == [("GRID", "APT-1", 13), ("GRID", "APT-2", 7), ("PV", "APT-1", 67), ("PV", "APT-2", 33)]
    assert lines_of(case) == [
        ("GRID", "APT-1", 0, 13),
        ("GRID", "APT-2", 0, 7),
        ("PV", "APT-1", 0, 67),
        ("PV", "APT-2", 0, 33),
    ]
    assert not Measurement.objects.filter(group=site.apt2).exists()
    split = correction_lines(consumer_ids=[site.apt2.pk], start=FEB, end=MAR)
    assert [(e["local_wh"], e["residual_wh"], e["quarter_hours"]) for e in split[site.apt2.pk]] == [(33, 7, 1)]
    assert not list(ledger_violations())


def test_a_missing_participant_refuses_and_the_case_stays_open(site, make_scheme, measure, operator):
    make_scheme("dynamic", sources=[site.pv])
    measure({site.pv: [100], site.apt1: [60]}, start=Q, status="final")  # APT-2 never measured
    close_january(site, operator)
    case = late(measure, site.apt1, 90)
    with pytest.raises(InvalidInput, match="cannot be allocated: it has no value of APT-2"):
        rebook(case, operator)
    case.refresh_from_db()
    assert case.status == ClarificationStatus.OPEN
    assert not Booking.objects.filter(kind=BookingKind.CORRECTION).exists()
    assert not Correction.objects.exists()


def test_late_values_that_wait_for_each_other_are_booked_with_the_last(site, make_scheme, measure, operator):
    make_scheme("dynamic", sources=[site.pv])
    measure({site.pv: [100]}, start=Q, status="final")  # a gateway outage: neither apartment sent
    close_january(site, operator)
    first, second = late(measure, site.apt1, 90), late(measure, site.apt2, 10)
    resolved = rebook(first, operator)
    assert resolved.resolution_note == (
        "Kept as the late value for 2026-01-15 11:00 (Europe/Berlin); the quarter-hour is booked as a correction "
        "once the open cases with the value of APT-2 are resolved."
    )
    assert booked() == []
    rebook(second, operator)
    # 100 Wh for 90 + 10 Wh: exactly covered.
    assert booked() == [("PV", "APT-1", 90), ("PV", "APT-2", 10)]
    assert lines_of(first) == [] and lines_of(second) == [("PV", "APT-1", 0, 90), ("PV", "APT-2", 0, 10)]
    assert not list(ledger_violations())


def test_a_quarter_hour_closed_for_one_participant_only_refuses(site, make_scheme, measure, operator):
    make_scheme("dynamic", sources=[site.pv])
    measure({site.pv: [100], site.apt1: [60], site.apt2: [40]}, start=Q, status="final")
    close_january(site, operator, site.apt1)
    case = late(measure, site.apt1, 90)
    with pytest.raises(InvalidInput, match="closed for APT-1 but open for APT-2, PV"):
        rebook(case, operator)
    case.refresh_from_db()
    assert case.status == ClarificationStatus.OPEN


def test_a_group_not_valid_in_the_first_open_quarter_hour_refuses(site, make_scheme, measure, operator):
    make_scheme("dynamic", sources=[site.pv])
    measure({site.pv: [100], site.apt1: [60], site.apt2: [40]}, start=Q, status="final")
    close_january(site, operator, site.pv, site.apt1, site.apt2)
    group_close(group=site.grid, actor=operator)  # the grid group ends: closed and valid up to now
    case = late(measure, site.apt1, 90)
    with pytest.raises(GroupNotValid, match="group GRID is valid from"):
        rebook(case, operator)
    case.refresh_from_db()
    assert case.status == ClarificationStatus.OPEN
    assert not Correction.objects.exists()


def test_a_group_in_no_scheme_refuses(site, measure, operator):
    measure({site.apt1: [60]}, start=Q, status="final")
    group_close(group=site.apt1, actor=operator, until=FEB)
    case = late(measure, site.apt1, 90)
    with pytest.raises(InvalidInput, match="no allocation scheme"):
        rebook(case, operator)


def test_a_substitute_value_refuses(closed_january, tenant, operator):
    from allocation.measurements import measurements_ingest

    item = {"group": "APT-1", "start": iso(Q), "energy_wh": 90, "quality": "substitute"}
    measurements_ingest(tenant=tenant, actor=operator, items=[item])
    with pytest.raises(InvalidInput, match="booked final; a substitute value cannot be"):
        rebook(ClarificationCase.objects.get(), operator)


def test_the_clarification_page_says_where_the_value_was_booked(closed_january, measure, operator, client):
    case = late(measure, closed_january.apt1, 90)
    client.force_login(operator)
    prefix = str(case.pk)
    response = client.post(
        reverse("dashboard:clarification-resolve", args=[case.pk]), {f"{prefix}-action": "rebook"}, follow=True
    )
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "Case rebooked. The value of 2026-01-15 11:00 (Europe/Berlin) is booked as a correction of 2026-01 in the "
        "period from 2026-02-01 00:00 (Europe/Berlin): 4 flows changed."
    ]
    page = client.get(reverse("dashboard:clarifications") + "?status=rebooked")
    assert "in the period from 2026-02-01 00:00 (Europe/Berlin)" in page.text


def test_check_ledger_catches_a_correction_line_its_booking_disagrees_with(closed_january, measure, operator):
    rebook(late(measure, closed_january.apt1, 90), operator)
    assert not list(ledger_violations())
    line = CorrectionLine.objects.filter(booking__isnull=False).first()
    # Final bookings cannot be changed (PostgreSQL refuses it): the line is made to disagree instead.
    CorrectionLine.objects.filter(pk=line.pk).update(new_wh=line.new_wh + 1)
    assert {"correction_line", "correction_quarter"} <= {v.check for v in ledger_violations()}


def test_the_admin_shows_a_correction_and_cannot_change_it(closed_january, measure, operator, admin_client):
    rebook(late(measure, closed_january.apt1, 90), operator)
    correction = Correction.objects.get()
    assert admin_client.get(reverse("admin:allocation_correction_changelist") + "?q=APT").status_code == 200
    page = admin_client.get(reverse("admin:allocation_correction_change", args=[correction.pk])).text
    assert "Correction of 2026-01 (2026-01-15 10:00 UTC): PV -&gt; APT-1, 69 Wh" in page
    assert admin_client.get(reverse("admin:allocation_correction_add")).status_code == 403


def test_a_final_value_contradicted_before_the_close_is_corrected_after_it(site, make_scheme, measure, operator):
    make_scheme("dynamic", sources=[site.pv])
    measure({site.pv: [100], site.apt1: [60], site.apt2: [40]}, start=Q, status="final")
    assert measure({site.apt1: [90]}, start=Q, status="final").rejected[0]["code"] == "MEASUREMENT_FINAL"
    case = ClarificationCase.objects.get()
    close_january(site, operator)  # the month is closed before the case is resolved
    rebook(case, operator)
    assert Measurement.objects.get(group=site.apt1).energy_wh == 60  # the closed month keeps its value
    assert lines_of(case) == [
        ("GRID", "APT-1", 0, 21),
        ("GRID", "APT-2", 0, 9),
        ("PV", "APT-1", 60, 69),
        ("PV", "APT-2", 40, 31),
    ]
    assert not list(ledger_violations())


def test_the_next_statement_shows_the_correction_as_its_own_lines(site, make_scheme, measure, operator, api):
    prices = {"price_local_ct_per_kwh": Decimal("27.5"), "price_residual_ct_per_kwh": Decimal("38.9")}
    make_scheme("dynamic", sources=[site.pv], prices=prices)
    measure({site.pv: [10000], site.apt1: [6000], site.apt2: [4000]}, start=Q, status="final")
    close_january(site, operator)
    site.apt1.refresh_from_db()
    closed = consumer_statement(group=site.apt1, month="2026-01")
    rebook(late(measure, site.apt1, 9000), operator)
    site.apt1.refresh_from_db()
    assert consumer_statement(group=site.apt1, month="2026-01") == closed  # the closed month stays as billed
    # 10000 Wh by 9000:4000 -> 6923.08 / 3076.92 -> 6923 / 3077; the grid supplies 2077 and 923 Wh.
    february = consumer_statement(group=site.apt1, month="2026-02")
    assert (february["consumption_wh"], february["local_wh"], february["residual_wh"]) == (0, 0, 0)
    assert [(line["kind"], line["energy_wh"]) for line in february["lines"][:2]] == [("local", 0), ("residual", 0)]
    corrections = february["lines"][2:]
    assert [(line["kind"], line["corrects"], line["energy_wh"], line["amount_eur"]) for line in corrections] == [
        ("correction_local", "2026-01", 923, Decimal("0.25")),  # 923 Wh x 27.5 ct/kWh = 0.2538 EUR
        ("correction_residual", "2026-01", 2077, Decimal("0.81")),  # 2077 Wh x 38.9 ct/kWh = 0.8080 EUR
    ]
    assert february["lines"][2]["start"] == T0  # the month corrected, from the scheme's start
    assert february["lines"][2]["end"] == FEB
    assert (february["amounts"]["corrections_eur"], february["amounts"]["total_eur"]) == (Decimal("1.06"),) * 2
    other = consumer_statement(group=site.apt2, month="2026-02")
    assert [(line["energy_wh"], line["amount_eur"]) for line in other["lines"] if line["corrects"]] == [
        (-923, Decimal("-0.25")),  # less local energy is money back
        (923, Decimal("0.36")),
    ]
    march = consumer_statement(group=site.apt1, month="2026-03")
    assert [line for line in march["lines"] if line["corrects"]] == []  # booked once, in February
    body = api.get("/api/v1/statements/", {"consumer": "APT-1", "month": "2026-02"}).json()
    assert [(line["kind"], line["corrects"], line["amount_eur"]) for line in body["lines"] if line["corrects"]] == [
        ("correction_local", "2026-01", "0.25"),
        ("correction_residual", "2026-01", "0.81"),
    ]
    assert body["amounts"]["corrections_eur"] == "1.06"


def test_the_statement_page_shows_the_correction_lines(site, make_scheme, measure, operator, client):
    make_scheme("dynamic", sources=[site.pv], prices={"price_local_ct_per_kwh": Decimal("27.5")})
    measure({site.pv: [10000], site.apt1: [6000], site.apt2: [4000]}, start=Q, status="final")
    close_january(site, operator)
    rebook(late(measure, site.apt1, 9000), operator)
    client.force_login(operator)
    page = client.get(reverse("dashboard:statement", args=["APT-1", "2026-02"]), HTTP_ACCEPT_LANGUAGE="de")
    assert page.status_code == 200
    assert "Korrektur 2026-01: lokaler Strom" in page.text
    assert "Reststrom (Netzbezug)" not in page.text.split("Korrektur 2026-01")[-1]  # no residual price, no line


def test_a_corrected_late_value_is_booked_with_the_corrected_energy(closed_january, measure, operator):
    from transactions.clarify import corrected_payload

    case = late(measure, closed_january.apt1, 90)
    corrected = corrected_payload(case.payload, {"energy_wh": 80}, case.subject)
    clarification_resolve(case=case, actor=operator, action="rebook", corrected=corrected)
    assert Correction.objects.get(case=case).energy_wh == 80
    case.refresh_from_db()
    assert (case.payload["energy_wh"], case.corrected_payload["energy_wh"]) == (90, 80)
    assert not list(ledger_violations())
