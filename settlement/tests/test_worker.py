"""End to end with a real Celery worker and the real Redis broker."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from core.integrity import ledger_violations
from settlement.models import DirtyDay, RunStatus, SettlementRun
from settlement.services import settlement_run_request
from settlement.tests.conftest import at
from transactions.models import Booking, BookingKind

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.celery_worker,
    pytest.mark.django_db(transaction=True),
]

WAIT_SECONDS = 90


def _database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def worker(tmp_path):
    from celery import current_app as app

    assert not app.conf.task_always_eager
    app.control.purge()  # leftovers of earlier runs on this broker database
    log = tmp_path / "worker.log"
    env = {**os.environ, "DATABASE_URL": _database_url(), "REDIS_URL": settings.REDIS_URL, "DB_CONN_MAX_AGE": "0"}
    celery = Path(sys.executable).with_name("celery")
    with log.open("w") as output:
        process = subprocess.Popen(
            [
                str(celery),
                "-A",
                "bkm",
                "worker",
                "--pool",
                "solo",
                "--loglevel",
                "INFO",
                "--without-mingle",
                "--without-gossip",
                "--without-heartbeat",
                "-n",
                f"settle-test-{os.getpid()}@%h",
            ],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    yield process, log
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_for(condition, process, log):
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if condition():
            return
        assert process.poll() is None, f"worker exited:\n{log.read_text()[-4000:]}"
        time.sleep(0.5)
    pytest.fail(f"the worker did not finish in {WAIT_SECONDS}s:\n{log.read_text()[-4000:]}")


def test_ingestion_and_requested_run_are_settled_by_a_real_worker(site, rule, book, operator, worker):
    process, log = worker
    rule(site["PV"], [(site["HOUSE"], 10000)])
    book(site["PV"], site["APT"], at(10), at(11), 1001)  # commits; settle_dirty is enqueued on commit
    assert DirtyDay.objects.exists()

    wait_for(lambda: not DirtyDay.objects.exists(), process, log)
    assert Booking.objects.filter(kind=BookingKind.SETTLEMENT).count() == 4

    run = settlement_run_request(tenant=site["PV"].tenant, actor=operator, start=at(0), end=at(24))
    assert run.status == RunStatus.QUEUED

    wait_for(lambda: SettlementRun.objects.get(pk=run.pk).status == RunStatus.SUCCEEDED, process, log)
    run.refresh_from_db()
    assert (run.lines_read, run.bookings_created, run.bookings_updated) == (8, 0, 0)
    assert ledger_violations() == []


def test_a_balance_read_through_up_to_date_with_a_real_worker(site, rule, book, worker):
    """The production topology: the figure read right after the write says it is not up to date;
    the worker recomputes it within seconds of the commit, and then it is final."""
    from settlement.selectors import group_balance

    process, log = worker
    rule(site["PV"], [(site["HOUSE"], 10000)])
    book(site["PV"], site["APT"], at(10), at(11), 1001, status="final")
    first = group_balance(group=site["APT"], start=at(10), end=at(11))
    if first["up_to_date"]:  # the worker may already have been that quick
        assert first["status"] == "final"
    else:
        assert first["status"] == "provisional"
    started = time.monotonic()
    wait_for(lambda: group_balance(group=site["APT"], start=at(10), end=at(11))["up_to_date"], process, log)
    fresh = group_balance(group=site["APT"], start=at(10), end=at(11))
    assert (fresh["status"], fresh["inflow_wh"]) == ("final", 1001)
    assert time.monotonic() - started < 30
