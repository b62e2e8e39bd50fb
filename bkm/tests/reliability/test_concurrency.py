"""Concurrency on PostgreSQL: 8 processes ingest overlapping bulk batches (shared external ids)
while 2 settlement runs for the same window run; the result equals a sequential run.

Processes, not threads: each is forked with Django's connections closed first, so every process
opens its own database connection (real parallel sessions, no shared Python state). The writes
run as in production with a broker: they mark days dirty and would enqueue the periodic job; the
test plays that job once at the end (``settlement_dirty_process``).
"""

import datetime as dt
import multiprocessing
import random
import time
import traceback

import pytest
from django.db import connections

from allocation.measurements import measurements_ingest
from balance_groups.factories import TenantFactory
from bkm.tests.reliability import figures
from bkm.tests.reliability.site import T0, add_scheme, build_site, iso, measurement_universe, snapshot, universe
from core.integrity import ledger_violations
from settlement.services import settlement_dirty_process, settlement_run
from transactions.bulk import bookings_bulk_ingest
from transactions.models import Booking, BookingKind

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

INGESTERS = 8
SETTLERS = 2
BATCHES = 4
BATCH_SIZE = 150
DAYS = 2
ITEMS = 600


def _batches(items: list[dict], worker: int) -> list[list[dict]]:
    """Overlapping batches: every item is sent by several processes, in different orders."""
    rng = random.Random(worker)
    return [rng.sample(items, BATCH_SIZE) for _ in range(BATCHES)]


def _ingest(tenant_id: int, worker: int, items: list[dict], start, results) -> None:
    from balance_groups.models import Tenant

    try:
        tenant = Tenant.objects.get(pk=tenant_id)
        start.wait()
        totals = [0, 0, 0, 0]
        for batch in _batches(items, worker):
            # No retry here: a deadlock or a lost race must be handled by the service, not surface.
            result = bookings_bulk_ingest(tenant=tenant, actor=f"system:ingest-{worker}", items=batch)
            totals = [
                totals[0] + result.created,
                totals[1] + result.replaced,
                totals[2] + result.unchanged,
                totals[3] + len(result.rejected),
            ]
        results.put(("ingest", worker, totals))
    except BaseException:
        results.put(("error", worker, traceback.format_exc()))
    finally:
        connections.close_all()


def _settle(tenant_id: int, worker: int, start, results) -> None:
    from balance_groups.models import Tenant

    try:
        tenant = Tenant.objects.get(pk=tenant_id)
        start.wait()
        runs = 0
        for _ in range(3):
            settlement_run(tenant=tenant, start=T0, end=T0 + dt.timedelta(days=DAYS), actor=f"system:settle-{worker}")
            runs += 1
        results.put(("settle", worker, runs))
    except BaseException:
        results.put(("error", worker, traceback.format_exc()))
    finally:
        connections.close_all()


def test_eight_ingesters_and_two_settlement_runs_end_as_a_sequential_run(broker_mode):
    items = universe(ITEMS, days=DAYS)
    concurrent = TenantFactory(code="concurrent")
    sequential = TenantFactory(code="sequential")
    for tenant in (concurrent, sequential):
        build_site(tenant, "system:test")

    connections.close_all()  # every process opens its own connection
    context = multiprocessing.get_context("fork")
    start = context.Barrier(INGESTERS + SETTLERS)
    results = context.Queue()
    processes = [
        context.Process(target=_ingest, args=(concurrent.pk, worker, items, start, results))
        for worker in range(INGESTERS)
    ] + [context.Process(target=_settle, args=(concurrent.pk, worker, start, results)) for worker in range(SETTLERS)]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=300) for _ in processes]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    errors = [outcome for outcome in outcomes if outcome[0] == "error"]
    assert errors == [], "\n".join(text for _, _, text in errors)  # no deadlock or serialization error surfaced

    sent = set()
    for worker in range(INGESTERS):
        for batch in _batches(items, worker):
            sent |= {item["external_id"] for item in batch}
    ingest_totals = [totals for kind, _, totals in outcomes if kind == "ingest"]
    assert sum(t[0] for t in ingest_totals) == len(sent)  # each external id created exactly once
    assert sum(t[3] for t in ingest_totals) == 0
    assert sum(t[0] + t[2] for t in ingest_totals) == INGESTERS * BATCHES * BATCH_SIZE

    print(f"concurrency: {INGESTERS} ingesters x {BATCHES} batches of {BATCH_SIZE}, {SETTLERS} settlers x 3 runs")

    settlement_dirty_process(tenant_id=concurrent.pk)  # the periodic job, once everything is in

    # The same items, once each, in one process; then one settlement run.
    bookings_bulk_ingest(tenant=sequential, actor="system:test", items=[i for i in items if i["external_id"] in sent])
    settlement_run(tenant=sequential, start=T0, end=T0 + dt.timedelta(days=DAYS))

    manual = Booking.objects.filter(tenant=concurrent).exclude(kind=BookingKind.SETTLEMENT)
    assert manual.count() == manual.values("external_id").distinct().count() == len(sent)
    assert ledger_violations() == []
    assert snapshot(concurrent) == snapshot(sequential)
    figures.put("concurrent_ingest_processes", INGESTERS)
    figures.put("concurrent_settlement_processes", SETTLERS)
    figures.put("concurrent_bulk_requests", INGESTERS * BATCHES)
    figures.put("concurrent_items_sent", INGESTERS * BATCHES * BATCH_SIZE)
    figures.put("concurrent_distinct_bookings", len(sent))


def test_a_write_racing_the_settlement_of_its_day_is_not_lost(broker_mode):
    """Deterministic interleaving: the day is dirty; a write marks it again but has not committed
    when the worker settles that day; the write commits; the periodic job runs."""
    import threading

    from balance_groups.models import BalanceGroup
    from settlement.selectors import group_balance
    from transactions.services import booking_create

    tenant = TenantFactory(code="race")
    build_site(tenant, "system:test")
    hour = dt.timedelta(hours=1)
    flat = BalanceGroup.objects.get(tenant=tenant, code="APT-1")
    booking_create(
        tenant=tenant, actor="system:a", source="PV", destination=flat, start=T0, end=T0 + hour, energy_wh=100
    )
    written, go, errors = threading.Event(), threading.Event(), []

    def late_writer():
        from django.db import transaction

        try:
            with transaction.atomic():
                booking_create(
                    tenant=tenant, actor="system:b", source="PV", destination=flat, start=T0, end=T0 + hour, energy_wh=7
                )
                written.set()
                go.wait(timeout=60)
        except BaseException as error:
            errors.append(error)
            written.set()
        finally:
            connections.close_all()

    def worker():
        try:
            assert written.wait(timeout=60)
            settlement_dirty_process(tenant_id=tenant.pk)  # the worker settles the day meanwhile
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=late_writer), threading.Thread(target=worker)]
    for thread in threads:
        thread.start()
    # Let the write commit once the worker is done with the day, or waits for the write (a lock).
    deadline = time.monotonic() + 60
    while threads[1].is_alive() and not _someone_waits_for_a_lock() and time.monotonic() < deadline:
        time.sleep(0.05)
    go.set()
    for thread in threads:
        thread.join()
    assert errors == []
    settlement_dirty_process(tenant_id=tenant.pk)  # the job the late write enqueued on commit
    balance = group_balance(group=flat, start=T0, end=T0 + hour)
    assert ledger_violations([tenant.pk]) == []
    assert balance["inflow_wh"] == 107


def _someone_waits_for_a_lock() -> bool:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0


@pytest.mark.parametrize("channel", ["single", "bulk"])
def test_a_booking_racing_the_close_of_its_period_is_refused_or_lands_before_it(channel, monkeypatch):
    """Deterministic interleaving: a write has checked that the period is open; the operator closes
    the period and commits; then the write commits. No entry may be accepted for a closed time, so
    either the close waits for the write (and the entry predates it) or the write is refused."""
    import threading

    from balance_groups.models import BalanceGroup
    from balance_groups.services import group_close
    from core.errors import PeriodClosed
    from core.quarters import QUARTER
    from transactions import bulk, services

    tenant = TenantFactory(code=f"close-race-{channel}")
    build_site(tenant, "system:test")
    flat = BalanceGroup.objects.get(tenant=tenant, code="APT-1")
    checked, closed, outcome = threading.Event(), threading.Event(), {}
    writer_thread = {}

    def pause():
        if threading.current_thread() is writer_thread.get("thread"):
            checked.set()
            closed.wait(timeout=5)  # the close commits meanwhile (or waits for this write: then 5 s pass)

    # The pause comes where each path has decided that the period is open and is about to write.
    original_check, original_stored = services.check_bookable, bulk._stored

    def check_then_pause(**kwargs):
        original_check(**kwargs)
        pause()

    def stored_then_pause(*args, **kwargs):
        found = original_stored(*args, **kwargs)
        pause()
        return found

    monkeypatch.setattr(services, "check_bookable", check_then_pause)
    monkeypatch.setattr(bulk, "_stored", stored_then_pause)
    item = {"source": "PV", "destination": "APT-1", "start": iso(T0), "end": iso(T0 + QUARTER), "energy_wh": 9}

    def write():
        try:
            if channel == "single":
                from transactions.payloads import booking_fields_from_payload

                services.booking_create(tenant=tenant, actor="system:w", **booking_fields_from_payload(item))
            else:
                result = bulk.bookings_bulk_ingest(
                    tenant=tenant, actor="system:w", items=[{**item, "external_id": "r"}]
                )
                if result.rejected:
                    outcome["rejected"] = result.rejected
            outcome["write"] = "stored"
        except PeriodClosed:
            outcome["write"] = "PERIOD_CLOSED"
        except BaseException as error:
            outcome["write"] = repr(error)
        finally:
            checked.set()
            connections.close_all()

    thread = threading.Thread(target=write)
    writer_thread["thread"] = thread
    thread.start()
    assert checked.wait(timeout=30)
    group_close(group=flat, actor="system:operator", until=T0 + dt.timedelta(days=1))
    closed.set()
    thread.join()
    stored = Booking.objects.filter(tenant=tenant, destination=flat).exists()
    close_entry = BalanceGroup.objects.get(pk=flat.pk).updated_at
    assert outcome["write"] in ("stored", "PERIOD_CLOSED"), outcome
    if stored:
        booking = Booking.objects.get(tenant=tenant, destination=flat)
        assert booking.created_at < close_entry, "an entry was accepted for a period closed before it"
    assert ledger_violations([tenant.pk]) == []


def _ingest_measurements(tenant_id: int, worker: int, items: list[dict], start, results) -> None:
    from allocation.measurements import measurements_ingest
    from balance_groups.models import Tenant

    try:
        tenant = Tenant.objects.get(pk=tenant_id)
        start.wait()
        rng = random.Random(worker)
        batches = [items[i : i + 120] for i in range(0, len(items), 120)]
        rng.shuffle(batches)  # every process sends every value, in another order
        created = 0
        for batch in batches:
            result = measurements_ingest(tenant=tenant, actor=f"system:meter-{worker}", items=batch)
            assert result.rejected == [], result.rejected
            created += result.created
        results.put(("measure", worker, created))
    except BaseException:
        results.put(("error", worker, traceback.format_exc()))
    finally:
        connections.close_all()


def test_four_meter_feeds_and_two_settlement_runs_allocate_as_one_clean_run(broker_mode):
    items = measurement_universe(DAYS, skip_every=29, final_every=4)
    concurrent = TenantFactory(code="alloc-concurrent")
    sequential = TenantFactory(code="alloc-sequential")
    for tenant in (concurrent, sequential):
        add_scheme(tenant, build_site(tenant, "system:test"), "system:test")

    connections.close_all()
    context = multiprocessing.get_context("fork")
    feeds = 4
    start = context.Barrier(feeds + SETTLERS)
    results = context.Queue()
    processes = [
        context.Process(target=_ingest_measurements, args=(concurrent.pk, worker, items, start, results))
        for worker in range(feeds)
    ] + [context.Process(target=_settle, args=(concurrent.pk, worker, start, results)) for worker in range(SETTLERS)]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=300) for _ in processes]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    errors = [outcome for outcome in outcomes if outcome[0] == "error"]
    assert errors == [], "\n".join(text for _, _, text in errors)
    assert sum(created for kind, _, created in outcomes if kind == "measure") == len(items)  # each value stored once

    settlement_dirty_process(tenant_id=concurrent.pk)
    measurements_ingest(tenant=sequential, actor="system:test", items=items)
    settlement_run(tenant=sequential, start=T0, end=T0 + dt.timedelta(days=DAYS))

    clean = snapshot(sequential)
    assert clean["allocated"] and clean["settled"]
    assert snapshot(concurrent) == clean
    assert ledger_violations() == []
    figures.put("concurrent_meter_feeds", feeds)
