"""Runs racing each other on PostgreSQL: the ledger ends as after one clean run."""

import threading

import pytest
from django.db import connection

from core.integrity import ledger_violations
from settlement.models import RunStatus, SettlementBooking
from settlement.services import settlement_run
from settlement.tests.conftest import at
from transactions.models import Booking, BookingKind, LedgerLine

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def settlement_ledger():
    return sorted(
        (str(link.child_id), str(link.parent_id), link.window_start, link.revision, link.booking.energy_wh)
        for link in SettlementBooking.objects.select_related("booking")
    )


def in_threads(count, target):
    barrier = threading.Barrier(count)
    results, errors = [], []

    def run():
        try:
            barrier.wait()
            results.append(target())
        except Exception as error:  # collected and asserted below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors


def test_two_concurrent_runs_give_the_ledger_of_one(site, rule, book, broker_mode):
    rule(site["APT"], [(site["FLOOR"], 10000)])
    rule(site["FLOOR"], [(site["HOUSE"], 10000)], interval="1h")
    rule(site["PV"], [(site["H1"], 6000), (site["H2"], 4000)])
    book(site["PV"], site["APT"], at(10), at(14), 10001)
    book(site["GRID"], site["APT2"], at(22), at(26), 999)  # two local days
    tenant = site["PV"].tenant

    runs, errors = in_threads(2, lambda: settlement_run(tenant=tenant, start=at(0), end=at(30)))

    assert errors == []
    assert [run.status for run in runs] == [RunStatus.SUCCEEDED, RunStatus.SUCCEEDED]
    # One run created everything, the other found it done: 16 APT + 4 FLOOR + 2 * 16 PV keys.
    assert sorted(run.bookings_created for run in runs) == [0, 52]
    concurrent = settlement_ledger()
    assert len(concurrent) == len({(c, p, w, r) for c, p, w, r, _ in concurrent}) == 52
    assert Booking.objects.filter(kind=BookingKind.SETTLEMENT).count() == 52
    assert ledger_violations() == []

    # The same ledger as a clean single computation.
    lines = LedgerLine.objects.filter(booking__kind=BookingKind.SETTLEMENT)
    lines.delete()
    SettlementBooking.objects.all().delete()
    Booking.objects.filter(kind=BookingKind.SETTLEMENT).delete()
    clean = settlement_run(tenant=tenant, start=at(0), end=at(30))
    assert clean.bookings_created == 52
    assert settlement_ledger() == concurrent


def test_runs_racing_ingestion_end_consistent(site, rule, book, broker_mode):
    from transactions.services import booking_create

    rule(site["PV"], [(site["HOUSE"], 10000)])
    tenant = site["PV"].tenant
    book(site["PV"], site["APT"], at(10), at(11), 400)

    def work():
        settlement_run(tenant=tenant, start=at(0), end=at(24))
        booking_create(
            tenant=tenant,
            actor="test",
            source=site["PV"],
            destination=site["APT2"],
            start=at(10),
            end=at(11),
            energy_wh=40,
            external_id=f"race-{threading.get_ident()}",
        )
        return settlement_run(tenant=tenant, start=at(0), end=at(24))

    runs, errors = in_threads(3, work)

    assert errors == []
    assert all(run.status == RunStatus.SUCCEEDED for run in runs)
    # 400 + 3 * 40 = 520 Wh over 4 quarters, settled once per quarter.
    assert [link[4] for link in settlement_ledger()] == [130, 130, 130, 130]
    assert ledger_violations() == []


def test_a_write_does_not_wait_for_a_settlement_of_its_day_and_its_mark_stays(
    site, rule, book, broker_mode, monkeypatch
):
    from django.db import transaction

    from settlement.engine import units
    from settlement.models import DirtyDay
    from settlement.services import settlement_dirty_process

    rule(site["PV"], [(site["HOUSE"], 10000)])
    book(site["PV"], site["APT"], at(10), at(11), 100)
    tenant = site["PV"].tenant
    u0, u1 = at(-1), at(23)
    holding, release = threading.Event(), threading.Event()

    def settling_slowly(**kwargs):
        holding.set()  # the unit has taken the day's marks and holds its transaction open
        release.wait(30)
        return units.UnitStats()

    monkeypatch.setattr(units, "_steps_before", [*units._steps_before, settling_slowly])
    errors = []

    def settle():
        try:
            units.settle_unit(tenant_id=tenant.pk, u0=u0, u1=u1)
        except Exception as error:  # asserted below
            errors.append(error)
        finally:
            connection.close()

    worker = threading.Thread(target=settle)
    worker.start()
    assert holding.wait(30)
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '2s'")  # waiting for the unit would fail here
            book(site["PV"], site["APT"], at(12), at(13), 50)
    finally:
        release.set()
        worker.join()
    assert errors == []
    assert list(DirtyDay.objects.filter(tenant=tenant).values_list("day_start", flat=True)) == [u0]
    settlement_dirty_process(tenant_id=tenant.pk, now=at(48))
    assert not DirtyDay.objects.exists()
    assert ledger_violations() == []
    assert SettlementBooking.objects.filter(child=site["PV"]).count() == 8  # both hours' quarter-hours settled


def test_workers_share_the_days_of_one_tenant(site, rule, book, broker_mode, monkeypatch):
    """A periodic run passes over a day another worker is settling, settles the others meanwhile,
    and settles that day at the end only if it is still marked (here: no, it was done)."""
    from settlement.engine import units
    from settlement.engine.windows import unit_of
    from settlement.models import DirtyDay
    from settlement.services import settlement_dirty_process

    rule(site["PV"], [(site["HOUSE"], 10000)])
    for hour in (10, 34, 58):  # three local days
        book(site["PV"], site["APT"], at(hour), at(hour + 1), 100)
    tenant = site["PV"].tenant
    first, busy, last = (unit_of(at(hour)) for hour in (10, 34, 58))
    assert DirtyDay.objects.filter(tenant=tenant).values("day_start").distinct().count() == 3
    holding, release = threading.Event(), threading.Event()
    allocated = []

    def step(*, u0, **kwargs):
        allocated.append(u0)
        if threading.current_thread().name == "other-worker":
            holding.set()  # the other worker holds the busy day's lock inside its unit
            release.wait(30)
        return units.UnitStats()

    monkeypatch.setattr(units, "_steps_before", [*units._steps_before, step])
    other = threading.Thread(
        target=lambda: in_thread(lambda: units.settle_unit(tenant_id=tenant.pk, u0=busy[0], u1=busy[1])),
        name="other-worker",
    )
    other.start()
    assert holding.wait(30)
    runs = []
    periodic = threading.Thread(
        target=lambda: runs.extend(in_thread(lambda: settlement_dirty_process(tenant_id=tenant.pk)))
    )
    periodic.start()
    try:
        for _ in range(300):  # the periodic run settles the two free days while the busy one is held
            marked = set(DirtyDay.objects.filter(tenant=tenant).values_list("day_start", flat=True))
            if marked == {busy[0]}:
                break
            threading.Event().wait(0.1)
        assert marked == {busy[0]}
        assert periodic.is_alive()  # and waits for the busy day
    finally:
        release.set()
        other.join()
        periodic.join()
    assert [run.status for run in runs] == [RunStatus.SUCCEEDED]
    assert runs[0].days_done == 3
    assert sorted(allocated) == sorted([first[0], busy[0], last[0]])  # the busy day was settled once
    assert not DirtyDay.objects.exists()
    assert ledger_violations() == []
    assert SettlementBooking.objects.filter(child=site["PV"]).count() == 12


def in_thread(work):
    try:
        return work()
    finally:
        connection.close()
