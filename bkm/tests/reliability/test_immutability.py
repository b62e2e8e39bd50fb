"""Immutability and the audit trail.

A final booking or line cannot be changed or deleted, not even with raw SQL (a PostgreSQL
trigger); corrections are reversal bookings; every write leaves an audit entry with actor and time.
"""

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from balance_groups.models import AuditEntry
from balance_groups.services import api_client_create, api_client_revoke, group_close, group_create, group_update
from bkm.tests.reliability import figures
from core.errors import BookingFinal, PeriodClosed
from core.integrity import ledger_violations
from core.testing import HOUR
from core.testing import SUMMER_MONDAY as T0
from settlement.selectors import group_balance
from settlement.services import rule_change, settlement_run
from transactions.models import Booking, BookingStatus, ClarificationCase, LedgerLine
from transactions.services import (
    booking_create,
    booking_finalize,
    booking_reverse,
    clarification_resolve,
)


@pytest.fixture
def pv_flat(make_group):
    return make_group("PV", "source", valid_from=T0), make_group("FLAT", "consumer", valid_from=T0)


def _book(tenant, actor, pv, flat, **kwargs):
    fields = {"start": T0, "end": T0 + HOUR, "energy_wh": 1001}
    fields.update(kwargs)
    return booking_create(tenant=tenant, actor=actor, source=pv, destination=flat, **fields).booking


RAW_WRITES = [
    ("UPDATE transactions_booking SET energy_wh = energy_wh + 1 WHERE id = %(booking)s", "booking"),
    ("UPDATE transactions_booking SET status = 'provisional' WHERE id = %(booking)s", "booking"),
    ("DELETE FROM transactions_booking WHERE id = %(booking)s", "booking"),
    ("UPDATE transactions_ledgerline SET energy_wh = energy_wh + 1 WHERE booking_id = %(booking)s", "line"),
    ("UPDATE transactions_ledgerline SET is_final = false WHERE booking_id = %(booking)s", "line"),
    ("DELETE FROM transactions_ledgerline WHERE booking_id = %(booking)s", "line"),
]


@pytest.mark.postgres
@pytest.mark.parametrize(("sql", "target"), RAW_WRITES, ids=[f"{n}" for n in range(len(RAW_WRITES))])
def test_raw_sql_cannot_change_a_final_booking_or_line(tenant, operator, pv_flat, sql, target):
    pv, flat = pv_flat
    booking = _book(tenant, operator, pv, flat, status="final")
    lines_before = list(
        LedgerLine.objects.filter(booking=booking).values_list("quarter_start", "energy_wh", "is_final")
    )
    with pytest.raises(DatabaseError, match="BOOKING_FINAL"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, {"booking": booking.pk})
    figures.add("immutability_raw_writes_refused")
    stored = Booking.objects.get(pk=booking.pk)
    assert (stored.energy_wh, stored.status) == (1001, BookingStatus.FINAL)
    assert list(LedgerLine.objects.filter(booking=booking).values_list("quarter_start", "energy_wh", "is_final")) == (
        lines_before
    )


@pytest.mark.postgres
def test_orm_bulk_update_and_delete_are_refused_too(tenant, operator, pv_flat):
    pv, flat = pv_flat
    booking = _book(tenant, operator, pv, flat, status="final")
    with pytest.raises(DatabaseError), transaction.atomic():
        Booking.objects.filter(pk=booking.pk).update(energy_wh=5)
    with pytest.raises(DatabaseError), transaction.atomic():
        LedgerLine.objects.filter(booking=booking).delete()
    assert sum(LedgerLine.objects.filter(booking=booking).values_list("energy_wh", flat=True)) == 1001


@pytest.mark.postgres
def test_the_same_raw_sql_works_on_a_provisional_booking(tenant, operator, pv_flat):
    """The control: the trigger refuses because the booking is final, not because SQL is refused."""
    pv, flat = pv_flat
    booking = _book(tenant, operator, pv, flat)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE transactions_ledgerline SET energy_wh = 1 WHERE booking_id = %s", [booking.pk])
    assert set(LedgerLine.objects.filter(booking=booking).values_list("energy_wh", flat=True)) == {1}


def test_a_final_booking_is_corrected_only_by_reversal(tenant, operator, pv_flat):
    pv, flat = pv_flat
    booking = _book(tenant, operator, pv, flat, status="final", external_id="meter-7")
    with pytest.raises(BookingFinal):
        _book(tenant, operator, pv, flat, status="final", external_id="meter-7", energy_wh=999)
    reversal = booking_reverse(booking=booking, actor=operator)
    assert (reversal.source_id, reversal.destination_id, reversal.energy_wh) == (flat.pk, pv.pk, 1001)
    assert reversal.status == BookingStatus.FINAL
    corrected = _book(tenant, operator, pv, flat, status="final", external_id="meter-7b", energy_wh=999)
    balance = group_balance(group=flat, start=T0, end=T0 + HOUR, resolution="15min")
    assert balance["net_wh"] == corrected.energy_wh
    assert [i["net_wh"] for i in balance["intervals"]] == [250, 250, 250, 249]
    assert Booking.objects.get(pk=booking.pk).energy_wh == 1001  # the original is untouched
    assert ledger_violations() == []


def test_every_write_is_audited_with_actor_and_time(tenant, operator, make_group):
    started = timezone.now()
    grid = group_create(tenant=tenant, actor=operator, code="GRID", name="Netz", kind="balance", valid_from=T0)
    pv = group_create(tenant=tenant, actor=operator, code="PV", name="PV Dach", kind="source", valid_from=T0)
    flat = group_create(tenant=tenant, actor=operator, code="FLAT", name="Wohnung", kind="consumer", valid_from=T0)
    group_update(group=flat, actor=operator, name="Wohnung 1")
    rule = rule_change(group=pv, actor=operator, targets=[(grid, 10000)], effective_from=T0)
    client, _ = api_client_create(tenant=tenant, name="gateway", actor=operator)
    created = booking_create(
        tenant=tenant,
        actor=client,
        source=pv,
        destination=flat,
        start=T0,
        end=T0 + HOUR,
        energy_wh=400,
        external_id="x",
    ).booking
    booking_create(
        tenant=tenant,
        actor=client,
        source=pv,
        destination=flat,
        start=T0,
        end=T0 + HOUR,
        energy_wh=500,
        external_id="x",
    )
    booking_finalize(booking=created, actor=operator)
    reversal = booking_reverse(booking=created, actor=operator)
    group_close(group=flat, actor=operator, until=T0 + HOUR)
    payload = {"source": "PV", "destination": "FLAT", "start": T0.isoformat(), "end": (T0 + HOUR).isoformat()}
    payload["energy_wh"] = 7
    with pytest.raises(PeriodClosed):
        booking_create(
            tenant=tenant,
            actor=client,
            source="PV",
            destination="FLAT",
            start=T0,
            end=T0 + HOUR,
            energy_wh=7,
            payload=payload,
        )
    case = ClarificationCase.objects.get(tenant=tenant)
    clarification_resolve(case=case, actor=operator, action="dismiss", note="duplicate reading")
    run = settlement_run(tenant=tenant, start=T0, end=T0 + HOUR, actor=operator)
    api_client_revoke(client=client, actor=operator)
    expected = [
        ("group.create", grid.pk, "user:operator"),
        ("group.create", pv.pk, "user:operator"),
        ("group.create", flat.pk, "user:operator"),
        ("group.update", flat.pk, "user:operator"),
        ("rule.change", rule.pk, "user:operator"),
        ("api_client.create", client.pk, "user:operator"),
        ("booking.create", created.pk, "client:gateway"),
        ("booking.replace", created.pk, "client:gateway"),
        ("booking.finalize", created.pk, "user:operator"),
        ("booking.reverse", reversal.pk, "user:operator"),
        ("group.close", flat.pk, "user:operator"),
        ("clarification.create", case.pk, "client:gateway"),
        ("clarification.dismiss", case.pk, "user:operator"),
        ("settlement.run", run.pk, "user:operator"),
        ("api_client.revoke", client.pk, "user:operator"),
    ]
    entries = AuditEntry.objects.filter(tenant=tenant)
    for action, object_id, actor in expected:
        entry = entries.filter(action=action, object_id=str(object_id)).first()
        assert entry is not None, f"no audit entry for {action} {object_id}"
        assert entry.actor == actor
        assert started <= entry.at <= timezone.now()
    assert entries.filter(actor="system:settle", action="settlement.apply").exists()
    figures.add("audited_write_kinds", len(expected))


def test_a_rolled_back_write_leaves_no_audit_entry(tenant, operator, pv_flat):
    pv, flat = pv_flat
    before = AuditEntry.objects.count()

    class Abort(Exception):
        pass

    with pytest.raises(Abort), transaction.atomic():
        _book(tenant, operator, pv, flat)
        assert AuditEntry.objects.count() > before
        raise Abort
    assert AuditEntry.objects.count() == before
    assert not Booking.objects.filter(tenant=tenant).exists()
