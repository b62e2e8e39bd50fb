"""Faults: a worker killed mid-task, a database error halfway through a bulk ingest, a task
delivered twice, a rolled-back request. Each ends with the ledger of a clean run (or none of the
failed batch) and ``ledger_violations() == []``."""

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.db import DatabaseError, connection, connections, transaction
from rest_framework.test import APIClient

from allocation.measurements import measurements_ingest
from balance_groups.factories import TenantFactory
from balance_groups.models import AuditEntry
from balance_groups.services import api_client_create, group_close
from bkm.tests.reliability import figures
from bkm.tests.reliability.site import T0, add_scheme, build_site, measurement_universe, snapshot, universe
from core.integrity import ledger_violations
from settlement.models import DirtyDay, Imbalance, RunStatus, SettlementBooking, SettlementRun
from settlement.services import settlement_run, settlement_run_request
from settlement.tasks import settle_dirty, settlement_run_task
from transactions.bulk import bookings_bulk_ingest
from transactions.models import Booking, ClarificationCase, LedgerLine

WAIT_SECONDS = 120
pytestmark = pytest.mark.django_db


def _tenant_with_site(code):
    tenant = TenantFactory(code=code)
    build_site(tenant, "system:test")
    return tenant


def _nothing_of_the_batch(tenant, audit_before):
    assert not Booking.objects.filter(tenant=tenant).exists()
    assert not LedgerLine.objects.filter(tenant=tenant).exists()
    assert not ClarificationCase.objects.filter(tenant=tenant).exists()
    assert not DirtyDay.objects.filter(tenant=tenant).exists()
    assert not Imbalance.objects.filter(tenant=tenant).exists()
    assert AuditEntry.objects.filter(tenant=tenant).count() == audit_before


# -- a database error halfway through a bulk ingest ----------------------------------------


def _batch_with_a_closed_period(tenant):
    from balance_groups.models import BalanceGroup

    grid = BalanceGroup.objects.get(tenant=tenant, code="GRID")
    group_close(group=grid, actor="system:test", until=T0 + dt.timedelta(days=2))
    items = universe(300, days=2)
    refused = sum("GRID" in (item["source"], item["destination"]) for item in items)  # would become cases
    assert 0 < refused < 300
    return items, refused


@pytest.mark.postgres
def test_database_error_in_the_line_insert_leaves_nothing_of_the_batch(monkeypatch):
    """The bookings are in, the lines statement fails part-way (division by zero on the third
    row): the whole batch is rolled back, clarification cases and audit included."""
    from transactions.writers import LedgerRows

    tenant = _tenant_with_site("fault-sql")
    items, refused = _batch_with_a_closed_period(tenant)
    audit_before = AuditEntry.objects.filter(tenant=tenant).count()
    original = LedgerRows.write

    def failing(self):
        self.bookings.write()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 / (3 - q) FROM generate_series(1, 3) AS q")

    monkeypatch.setattr(LedgerRows, "write", failing)
    with pytest.raises(DatabaseError, match="division by zero"):
        bookings_bulk_ingest(tenant=tenant, actor="system:test", items=items)
    _nothing_of_the_batch(tenant, audit_before)
    figures.add("faults_injected")
    monkeypatch.setattr(LedgerRows, "write", original)
    result = bookings_bulk_ingest(tenant=tenant, actor="system:test", items=items)  # the sender retries
    assert (result.created, len(result.rejected)) == (300 - refused, refused)
    assert ClarificationCase.objects.filter(tenant=tenant).count() == refused
    assert ledger_violations([tenant.pk]) == []
    figures.add("faults_survived")


def test_database_error_after_the_rows_are_written_leaves_nothing_of_the_batch(monkeypatch):
    """Any backend: the error comes after bookings and lines were written (marking the days)."""
    tenant = _tenant_with_site("fault-mark")
    items, refused = _batch_with_a_closed_period(tenant)
    audit_before = AuditEntry.objects.filter(tenant=tenant).count()

    def broken(**kwargs):
        assert Booking.objects.filter(tenant=tenant).count() == 300 - refused  # halfway: the rows are there
        raise DatabaseError("injected: connection lost")

    monkeypatch.setattr("core.ledger._listeners", [broken])
    with pytest.raises(DatabaseError, match="injected"):
        bookings_bulk_ingest(tenant=tenant, actor="system:test", items=items)
    _nothing_of_the_batch(tenant, audit_before)
    figures.add("faults_injected")
    figures.add("faults_survived")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_bulk_request_answers_500_in_the_error_shape_and_enqueues_nothing(broker_mode, monkeypatch):
    tenant = _tenant_with_site("fault-api")
    _, key = api_client_create(tenant=tenant, name="gateway")
    items = universe(50, days=1)
    monkeypatch.setattr(
        "transactions.bulk.write_bookings", lambda **kwargs: (_ for _ in ()).throw(DatabaseError("injected"))
    )
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    response = client.post("/api/v1/bookings/bulk", {"bookings": items}, format="json")
    assert response.status_code == 500
    assert response.json()["code"] == "SERVER_ERROR"
    assert broker_mode == []
    assert not Booking.objects.filter(tenant=tenant).exists()
    figures.add("faults_injected")
    figures.add("faults_survived")


# -- the same task delivered twice; a rolled-back request ----------------------------------


def test_a_run_task_delivered_twice_has_one_effect(broker_mode):
    tenant = _tenant_with_site("fault-twice")
    bookings_bulk_ingest(tenant=tenant, actor="system:test", items=universe(200, days=2))
    run = settlement_run_request(tenant=tenant, actor="system:test", start=T0, end=T0 + dt.timedelta(days=2))
    assert run.status == RunStatus.QUEUED
    settlement_run_task.apply(args=[str(run.pk)])
    first = snapshot(tenant)
    counts = SettlementRun.objects.filter(pk=run.pk).values_list("bookings_created", "status").get()
    settlement_run_task.apply(args=[str(run.pk)])  # redelivered (acks_late): a no-op
    assert snapshot(tenant) == first
    assert SettlementRun.objects.filter(pk=run.pk).values_list("bookings_created", "status").get() == counts
    assert AuditEntry.objects.filter(action="settlement.run", object_id=str(run.pk)).count() == 1
    assert first["settled"]
    settle_dirty.apply(kwargs={"tenant_id": tenant.pk})
    settle_dirty.apply(kwargs={"tenant_id": tenant.pk})
    assert snapshot(tenant) == first
    assert ledger_violations([tenant.pk]) == []
    figures.add("faults_injected", 2)
    figures.add("faults_survived", 2)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_run_task_delivered_twice_at_the_same_time_has_one_effect(broker_mode):
    tenant = _tenant_with_site("fault-twice-parallel")
    bookings_bulk_ingest(tenant=tenant, actor="system:test", items=universe(300, days=3))
    run = settlement_run_request(tenant=tenant, actor="system:test", start=T0, end=T0 + dt.timedelta(days=3))
    errors = []
    barrier = threading.Barrier(2)

    def deliver():
        try:
            barrier.wait()
            settlement_run_task.apply(args=[str(run.pk)], throw=True)
        except Exception as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert SettlementRun.objects.get(pk=run.pk).status == RunStatus.SUCCEEDED
    once = snapshot(tenant)
    clean = settlement_run(tenant=tenant, start=T0, end=T0 + dt.timedelta(days=3))
    assert (clean.bookings_created, clean.bookings_updated, clean.bookings_deleted) == (0, 0, 0)
    assert snapshot(tenant) == once
    assert ledger_violations([tenant.pk]) == []
    figures.add("faults_injected")
    figures.add("faults_survived")


def test_a_rolled_back_request_enqueues_no_task(broker_mode, django_capture_on_commit_callbacks):
    tenant = _tenant_with_site("fault-rollback")

    class Abort(Exception):
        pass

    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(Abort), transaction.atomic():
            bookings_bulk_ingest(tenant=tenant, actor="system:test", items=universe(20, days=1))
            settlement_run_request(tenant=tenant, actor="system:test", start=T0, end=T0 + dt.timedelta(days=1))
            raise Abort
        assert broker_mode == []
        assert not SettlementRun.objects.filter(tenant=tenant).exists()
        # The control: the same requests committed enqueue each task once.
        bookings_bulk_ingest(tenant=tenant, actor="system:test", items=universe(20, days=1))
        run = settlement_run_request(tenant=tenant, actor="system:test", start=T0, end=T0 + dt.timedelta(days=1))
    assert sorted(broker_mode, key=str) == sorted([("settle_dirty", tenant.pk), ("run", str(run.pk))], key=str)
    figures.add("faults_injected")
    figures.add("faults_survived")


# -- a real worker killed with SIGKILL in the middle of a settlement task ------------------


def _database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgresql://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _start_worker(log: Path, name: str, **extra_env) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "DB_CONN_MAX_AGE": "0",
        **extra_env,
    }
    celery = Path(sys.executable).with_name("celery")
    command = [str(celery), "-A", "bkm.tests.reliability.celery_app", "worker", "--pool", "solo", "--loglevel"]
    command += ["INFO", "--without-mingle", "--without-gossip", "--without-heartbeat", "-n", f"{name}-{os.getpid()}@%h"]
    with log.open("a") as output:
        return subprocess.Popen(command, cwd=settings.BASE_DIR, env=env, stdout=output, stderr=subprocess.STDOUT)


def _wait_for(condition, what: str, process=None, log: Path | None = None):
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if condition():
            return
        if process is not None:
            assert process.poll() is None, f"worker exited:\n{log.read_text()[-4000:]}"
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}:\n{log.read_text()[-4000:] if log else ''}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_settlement_then_redelivered_gives_the_clean_ledger(tmp_path, monkeypatch):
    import redis

    from bkm.celery import app

    assert not app.conf.task_always_eager
    from core import jobs

    send = jobs.send  # only the requested run is queued
    monkeypatch.setattr(
        "core.jobs.send", lambda name, kwargs: None if name == "settlement.settle_dirty" else send(name, kwargs)
    )
    days = 4
    items = universe(600, days=days)
    clean_tenant = _tenant_with_site("clean")
    killed_tenant = _tenant_with_site("killed")
    measurements = measurement_universe(days, skip_every=41, final_every=3)
    for tenant in (clean_tenant, killed_tenant):
        bookings_bulk_ingest(tenant=tenant, actor="system:test", items=items)
        add_scheme(tenant, {group.code: group for group in tenant.groups.all()}, "system:test")
        measurements_ingest(tenant=tenant, actor="system:test", items=measurements)
    settlement_run(tenant=clean_tenant, start=T0, end=T0 + dt.timedelta(days=days))
    clean = snapshot(clean_tenant)
    assert clean["settled"] and clean["allocated"]

    broker = redis.Redis.from_url(settings.REDIS_URL)
    app.control.purge()
    broker.delete("unacked", "unacked_index", "unacked_mutex")
    log = tmp_path / "worker.log"
    first = _start_worker(log, "doomed")
    third_day = sorted(DirtyDay.objects.filter(tenant=killed_tenant).values_list("day_start", flat=True).distinct())[2]
    try:
        # Hold the third day's dirty mark: the worker settles two days, then waits inside the third.
        with psycopg.connect(_database_url(), autocommit=False) as blocker:
            blocker.execute(
                "SELECT 1 FROM settlement_dirtyday WHERE tenant_id = %s AND day_start = %s FOR UPDATE",
                [killed_tenant.pk, third_day],
            )
            run = settlement_run_request(
                tenant=killed_tenant, actor="system:test", start=T0, end=T0 + dt.timedelta(days=days)
            )
            assert run.status == RunStatus.QUEUED

            def stuck_in_day_three():
                done = SettlementRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING, days_done=2).exists()
                return done and _waiting_for_lock(killed_tenant)

            _wait_for(stuck_in_day_three, "the worker to settle two days and wait in the third", first, log)
            os.kill(first.pid, signal.SIGKILL)
            first.wait(timeout=30)
            blocker.rollback()
        assert first.returncode == -signal.SIGKILL
        figures.add("faults_injected")
        assert SettlementRun.objects.get(pk=run.pk).status == RunStatus.RUNNING  # died, unfinished
        assert broker.hlen("unacked") == 1  # acks_late: the message waits for redelivery
        assert snapshot(killed_tenant) != clean

        second = _start_worker(log, "heir", BKM_TEST_VISIBILITY_TIMEOUT="1")
        try:
            _wait_for(
                lambda: SettlementRun.objects.filter(pk=run.pk, status=RunStatus.SUCCEEDED).exists(),
                "the redelivered run to succeed",
                second,
                log,
            )
        finally:
            _stop(second)
    finally:
        _stop(first)
    assert snapshot(killed_tenant) == clean
    assert ledger_violations() == []
    assert (
        SettlementBooking.objects.filter(tenant=killed_tenant).count()
        == SettlementBooking.objects.filter(tenant=clean_tenant).count()
    )
    figures.add("faults_survived")
    figures.add("worker_kills", 1)


def _waiting_for_lock(tenant) -> bool:
    """A backend of the worker waits for a lock (the held dirty mark)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            " AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0] > 0
