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
