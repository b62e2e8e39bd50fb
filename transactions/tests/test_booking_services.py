import datetime as dt

import pytest
from django.db import IntegrityError, connection, transaction

from balance_groups.models import AuditEntry
from core.errors import BookingFinal, Conflict, InvalidInput, InvalidTimeAlignment, NotFound, PeriodClosed
from core.integrity import ledger_violations
from core.testing import at
from settlement.selectors import group_balance
from transactions.models import Booking, ClarificationCase, LedgerLine
from transactions.services import (
    booking_create,
    booking_finalize,
    booking_reverse,
    bookings_finalize_until,
    clarification_resolve,
)


@pytest.fixture
def pv(make_group):
    return make_group("PV", "source")


@pytest.fixture
def flat(make_group):
    return make_group("FLAT", "consumer")


def book(tenant, actor, source, destination, start=0, end=1, energy_wh=1000, **kwargs):
    return booking_create(
        tenant=tenant,
        actor=actor,
        source=source,
        destination=destination,
        start=at(start),
        end=at(end),
        energy_wh=energy_wh,
        **kwargs,
    )


def test_1001_wh_over_one_hour_splits_exactly(tenant, operator, pv, flat):
    booking = book(tenant, operator, pv, flat, energy_wh=1001).booking
    lines = list(booking.lines.order_by("quarter_start").values_list("quarter_start", "energy_wh"))
    assert [energy for _, energy in lines] == [251, 250, 250, 250]
    assert [quarter for quarter, _ in lines] == [at(0), at(0.25), at(0.5), at(0.75)]


def test_1000_wh_over_one_hour_is_four_times_250(tenant, operator, pv, flat):
    booking = book(tenant, operator, pv, flat, energy_wh=1000).booking
    assert sorted(booking.lines.values_list("energy_wh", flat=True)) == [250, 250, 250, 250]


def test_lines_carry_the_booking_for_aggregation(tenant, operator, pv, flat):
    booking = book(tenant, operator, pv, flat, status="final").booking
    line = booking.lines.first()
    assert (line.tenant_id, line.source_id, line.destination_id, line.is_final) == (tenant.pk, pv.pk, flat.pk, True)


def test_balance_shows_inflow_outflow_and_net(tenant, operator, pv, flat):
    book(tenant, operator, pv, flat, energy_wh=1001)
    balance = group_balance(group=flat, start=at(0), end=at(2), resolution="1h")
    assert (balance["inflow_wh"], balance["outflow_wh"], balance["net_wh"]) == (1001, 0, 1001)
    assert [interval["net_wh"] for interval in balance["intervals"]] == [1001, 0]
    assert balance["status"] == "provisional"
    assert group_balance(group=pv, start=at(0), end=at(1))["intervals"][0]["net_wh"] == -251


@pytest.mark.parametrize(
    ("kwargs", "error", "field"),
    [
        ({"energy_wh": 0}, InvalidInput, "energy_wh"),
        ({"energy_wh": -5}, InvalidInput, "energy_wh"),
        ({"energy_wh": 1.5}, InvalidInput, "energy_wh"),
        ({"energy_wh": True}, InvalidInput, "energy_wh"),
        ({"energy_wh": "100"}, InvalidInput, "energy_wh"),
        ({"energy_wh": 10**19}, InvalidInput, "energy_wh"),
        ({"start": 0.1}, InvalidTimeAlignment, "start"),
        ({"end": 1.05}, InvalidTimeAlignment, "end"),
        ({"start": 1, "end": 1}, InvalidInput, "end"),
        ({"start": 2, "end": 1}, InvalidInput, "end"),
        ({"status": "booked"}, InvalidInput, "status"),
    ],
)
def test_bad_input_is_refused_and_nothing_written(tenant, operator, pv, flat, kwargs, error, field):
    with pytest.raises(error) as raised:
        book(tenant, operator, pv, flat, **kwargs)
    assert field in raised.value.errors
    assert not Booking.objects.exists()


def test_naive_instants_are_refused(tenant, operator, pv, flat):
    with pytest.raises(InvalidInput, match="offset"):
        booking_create(
            tenant=tenant,
            actor=operator,
            source=pv,
            destination=flat,
            start=dt.datetime(2026, 1, 1),
            end=at(1),
            energy_wh=1,
        )


def test_source_and_destination_must_differ(tenant, operator, pv):
    with pytest.raises(InvalidInput):
        book(tenant, operator, pv, pv)


def test_group_of_another_tenant_is_not_found(tenant, other_tenant, operator, pv, make_group):
    foreign = make_group("FOREIGN", "consumer", tenant=other_tenant)
    with pytest.raises(NotFound):
        book(tenant, operator, pv, foreign)
    with pytest.raises(NotFound):
        book(tenant, operator, pv, str(foreign.pk))
    assert not Booking.objects.exists()


def test_groups_are_accepted_by_code(tenant, operator, pv, flat):
    booking = book(tenant, operator, "PV", "FLAT").booking
    assert (booking.source, booking.destination) == (pv, flat)


def test_external_id_identical_resend_is_unchanged(tenant, operator, pv, flat):
    first = book(tenant, operator, pv, flat, external_id="m-1")
    again = book(tenant, operator, pv, flat, external_id="m-1")
    assert (first.outcome, again.outcome) == ("created", "unchanged")
    assert again.booking.pk == first.booking.pk
    assert Booking.objects.count() == 1


def test_external_id_different_content_replaces_provisional(tenant, operator, pv, flat):
    first = book(tenant, operator, pv, flat, external_id="m-1", energy_wh=400)
    second = book(tenant, operator, pv, flat, external_id="m-1", energy_wh=800, start=1, end=2)
    assert second.outcome == "replaced"
    assert second.booking.pk == first.booking.pk
    assert sorted(LedgerLine.objects.values_list("quarter_start", "energy_wh")) == [
        (at(1 + q / 4), 200) for q in range(4)
    ]
    assert AuditEntry.objects.filter(action="booking.replace", object_id=str(first.booking.pk)).exists()


def test_external_id_of_final_booking_is_booking_final(tenant, operator, pv, flat):
    book(tenant, operator, pv, flat, external_id="m-1", status="final")
    with pytest.raises(BookingFinal):
        book(tenant, operator, pv, flat, external_id="m-1", energy_wh=5)
    assert book(tenant, operator, pv, flat, external_id="m-1", status="final").outcome == "unchanged"


def test_closed_period_is_refused_and_kept_as_clarification_case(tenant, operator, pv, flat):
    flat.closed_until = at(4)
    flat.save()
    payload = {
        "source": "PV",
        "destination": "FLAT",
        "start": at(3).isoformat(),
        "end": at(5).isoformat(),
        "energy_wh": 7,
    }
    with pytest.raises(PeriodClosed):
        book(tenant, operator, pv, flat, start=3, end=5, energy_wh=7, payload=payload)
    case = ClarificationCase.objects.get()
    assert (case.reason, case.payload, case.status) == ("PERIOD_CLOSED", payload, "open")
    assert not Booking.objects.exists()


def test_group_not_yet_valid_is_refused_and_kept(tenant, operator, pv, make_group):
    late = make_group("LATE", "consumer", valid_from=at(10))
    with pytest.raises(InvalidInput, match="valid from"):
        book(tenant, operator, pv, late, payload={"energy_wh": 1000})
    assert ClarificationCase.objects.get().reason == "GROUP_NOT_VALID"


def test_resend_of_booked_value_into_a_closed_period_is_unchanged(tenant, operator, pv, flat):
    book(tenant, operator, pv, flat, external_id="m-1")
    flat.closed_until = at(4)
    flat.save()
    assert book(tenant, operator, pv, flat, external_id="m-1", payload={}).outcome == "unchanged"
    with pytest.raises(PeriodClosed):
        book(tenant, operator, pv, flat, external_id="m-1", energy_wh=9, start=5, end=6, payload={})
    assert ClarificationCase.objects.count() == 1


def test_finalize_makes_booking_and_lines_final_once(tenant, operator, pv, flat):
    booking = book(tenant, operator, pv, flat).booking
    booking_finalize(booking=booking, actor=operator)
    booking.refresh_from_db()
    assert booking.status == "final"
    assert set(booking.lines.values_list("is_final", flat=True)) == {True}
    booking_finalize(booking=booking, actor=operator)
    assert AuditEntry.objects.filter(action="booking.finalize").count() == 1
    assert group_balance(group=flat, start=at(0), end=at(1))["status"] == "final"


def test_finalize_until_finalizes_only_bookings_ending_by_then(tenant, operator, pv, flat):
    early = book(tenant, operator, pv, flat, start=0, end=1).booking
    late = book(tenant, operator, pv, flat, start=1, end=3).booking
    assert bookings_finalize_until(group=flat, actor=operator, until=at(2)) == 1
    early.refresh_from_db()
    late.refresh_from_db()
    assert (early.status, late.status) == ("final", "provisional")


def test_reversal_cancels_a_final_booking_exactly(tenant, operator, pv, flat):
    booking = book(tenant, operator, pv, flat, energy_wh=1001, status="final").booking
    reversal = booking_reverse(booking=booking, actor=operator)
    assert (reversal.kind, reversal.status, reversal.source, reversal.destination) == ("reversal", "final", flat, pv)
    balance = group_balance(group=flat, start=at(0), end=at(1))
    assert (balance["inflow_wh"], balance["outflow_wh"], balance["net_wh"]) == (1001, 1001, 0)
    assert all(interval["net_wh"] == 0 for interval in balance["intervals"])
    with pytest.raises(Conflict):
        booking_reverse(booking=booking, actor=operator)
    assert ledger_violations() == []


def test_only_final_manual_bookings_are_reversed(tenant, operator, pv, flat):
    provisional = book(tenant, operator, pv, flat).booking
    with pytest.raises(Conflict):
        booking_reverse(booking=provisional, actor=operator)


def test_reversal_into_a_closed_period_is_refused(tenant, operator, pv, flat):
    booking = book(tenant, operator, pv, flat, status="final").booking
    flat.closed_until = at(1)
    flat.save()
    with pytest.raises(PeriodClosed):
        booking_reverse(booking=booking, actor=operator)


def test_clarification_rebook_creates_exactly_one_booking(tenant, operator, pv, flat):
    flat.closed_until = at(4)
    flat.save()
    payload = {
        "source": "PV",
        "destination": "FLAT",
        "start": at(2).isoformat(),
        "end": at(3).isoformat(),
        "energy_wh": 9,
    }
    with pytest.raises(PeriodClosed):
        book(tenant, operator, pv, flat, start=2, end=3, energy_wh=9, payload=payload)
    case = ClarificationCase.objects.get()
    with pytest.raises(PeriodClosed):
        clarification_resolve(case=case, actor=operator, action="rebook", note="")
    case.refresh_from_db()
    assert case.status == "open"
    flat.closed_until = None
    flat.save()
    case = clarification_resolve(case=case, actor=operator, action="rebook", note="meter confirmed")
    assert case.status == "rebooked"
    assert Booking.objects.get().energy_wh == 9
    with pytest.raises(Conflict):
        clarification_resolve(case=case, actor=operator, action="rebook", note="")
    assert Booking.objects.count() == 1


def test_clarification_dismiss_needs_a_note(tenant, operator, pv, flat):
    case = ClarificationCase.objects.create(tenant=tenant, reason="PERIOD_CLOSED", detail="x", payload={})
    with pytest.raises(InvalidInput):
        clarification_resolve(case=case, actor=operator, action="dismiss", note="")
    with pytest.raises(InvalidInput):
        clarification_resolve(case=case, actor=operator, action="delete", note="x")
    assert clarification_resolve(case=case, actor=operator, action="dismiss", note="duplicate").status == "dismissed"


def test_every_write_is_audited_with_actor(tenant, operator, pv, flat):
    booking = book(tenant, operator, pv, flat, external_id="a").booking
    booking_finalize(booking=booking, actor=operator)
    booking_reverse(booking=booking, actor="system:test")
    actions = list(AuditEntry.objects.order_by("id").values_list("action", "actor"))
    assert actions[-3:] == [
        ("booking.create", "user:operator"),
        ("booking.finalize", "user:operator"),
        ("booking.reverse", "system:test"),
    ]


@pytest.mark.postgres
def test_database_refuses_changes_to_final_bookings_and_lines(tenant, operator, pv, flat):
    booking = book(tenant, operator, pv, flat, status="final").booking
    for statement in (
        "UPDATE transactions_booking SET energy_wh = 1 WHERE id = %s",
        "DELETE FROM transactions_booking WHERE id = %s",
        "UPDATE transactions_ledgerline SET energy_wh = 1 WHERE booking_id = %s",
        "DELETE FROM transactions_ledgerline WHERE booking_id = %s",
    ):
        with pytest.raises(IntegrityError, match="BOOKING_FINAL"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement, [booking.pk])
    assert sorted(booking.lines.values_list("energy_wh", flat=True)) == [250, 250, 250, 250]


@pytest.mark.postgres
def test_database_refuses_misaligned_and_non_positive_rows(tenant, operator, pv, flat):
    booking = book(tenant, operator, pv, flat).booking
    for statement in (
        "UPDATE transactions_ledgerline SET quarter_start = quarter_start + interval '1 minute' WHERE booking_id = %s",
        "UPDATE transactions_ledgerline SET energy_wh = 0 WHERE booking_id = %s",
        'UPDATE transactions_booking SET "end" = start WHERE id = %s',
    ):
        with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement, [booking.pk])
