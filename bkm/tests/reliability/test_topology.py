"""The production topology end to end: the web app over real HTTP, a real Celery worker and one
beat against Redis and PostgreSQL. A client reads through ``up_to_date``; a run whose worker died
is found by the beat's reaper and retried."""

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from balance_groups.factories import TenantFactory
from balance_groups.services import api_client_create
from bkm.tests.http import (
    ALLOCATION_HOUR,
    ALLOCATION_VALUES,
    allocation_site,
    allocation_values_as_mscons,
    assert_allocated_hour,
    call,
    post_mscons,
)
from settlement.models import RunStatus, RunTrigger, SettlementRun
from settlement.tests.test_worker import _database_url

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.celery_worker,
    pytest.mark.django_db(transaction=True),
]

WAIT_SECONDS = 120
CELERY = Path(sys.executable).with_name("celery")


def _start(tmp_path, name: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": _database_url(), "REDIS_URL": settings.REDIS_URL, "DB_CONN_MAX_AGE": "0"}
    log = (tmp_path / f"{name}.log").open("w")
    return subprocess.Popen(
        [str(CELERY), "-A", "bkm", *args], cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
    )


@pytest.fixture
def services(tmp_path):
    """One worker and one beat (with the periodic tasks the migrations create)."""
    from celery import current_app

    assert not current_app.conf.task_always_eager
    current_app.control.purge()
    every_minute, _ = CrontabSchedule.objects.get_or_create(minute="*", hour="*", timezone="UTC")
    PeriodicTask.objects.update_or_create(
        name="settlement: retry runs whose worker stopped",
        defaults={"task": "settlement.reap_abandoned", "crontab": every_minute, "enabled": True},
    )
    processes = [
        _start(
            tmp_path,
            "worker",
            "worker",
            "--pool",
            "solo",
            "--without-mingle",
            "--without-gossip",
            "-n",
            f"topology-{os.getpid()}@%h",
            "--loglevel",
            "INFO",
        ),
        _start(tmp_path, "beat", "beat", "--loglevel", "INFO", "-s", str(tmp_path / "beat-schedule")),
    ]
    yield tmp_path
    for process in processes:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_for(condition, tmp_path, what: str):
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    logs = "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}" for log in sorted(tmp_path.glob("*.log")))
    pytest.fail(f"waited {WAIT_SECONDS}s for {what}:\n{logs}")


def test_a_client_reads_through_up_to_date_and_a_dead_run_is_retried(live_server, services):
    tenant = TenantFactory(code="topology")
    _, key = api_client_create(tenant=tenant, name="gateway")
    base = live_server.url + "/api/v1/"
    valid = "2026-03-01T23:00:00Z"
    for code, kind in (("HOUSE", "balance"), ("PV", "source"), ("APT", "consumer")):
        call(base, key, "POST", "balance-groups/", {"code": code, "name": code, "kind": kind, "valid_from": valid})
    rule = {"group": "PV", "targets": [{"parent": "HOUSE", "share": 10000}], "interval": "1h", "effective_from": valid}
    call(base, key, "POST", "settlement-rules/", rule)
    booking = {
        "source": "PV",
        "destination": "APT",
        "start": "2026-03-02T10:00:00Z",
        "end": "2026-03-02T11:00:00Z",
        "energy_wh": 1001,
        "status": "final",
    }
    call(base, key, "POST", "bookings/", booking)
    window = "start=2026-03-02T10:00:00Z&end=2026-03-02T11:00:00Z"

    first = call(base, key, "GET", f"balance-groups/PV/balance?{window}")
    assert first["up_to_date"] or first["status"] == "provisional"  # never a stale figure called final
    fresh = _wait_for(
        lambda: (answer := call(base, key, "GET", f"balance-groups/PV/balance?{window}"))["up_to_date"] and answer,
        services,
        "the worker to recompute the written day",
    )
    assert (fresh["status"], fresh["outflow_wh"], fresh["inflow_wh"]) == ("final", 1001, 1001)  # settled onto HOUSE
    assert call(base, key, "GET", f"imbalances/?{window}&group=HOUSE")["up_to_date"] is True

    # A run whose worker was killed: the beat's reaper (every minute) abandons and retries it.
    now = timezone.now()
    dead = SettlementRun.objects.create(
        tenant=tenant,
        start=dt.datetime(2026, 3, 1, 23, tzinfo=dt.UTC),
        end=dt.datetime(2026, 3, 2, 23, tzinfo=dt.UTC),
        status=RunStatus.RUNNING,
        started_at=now - dt.timedelta(hours=1),
        heartbeat_at=now - dt.timedelta(seconds=settings.RUN_LEASE_SECONDS + 60),
    )
    retry = _wait_for(
        lambda: SettlementRun.objects.filter(
            tenant=tenant, trigger=RunTrigger.RETRY, status=RunStatus.SUCCEEDED
        ).first(),
        services,
        "the reaper to retry the abandoned run",
    )
    dead.refresh_from_db()
    assert dead.status == RunStatus.ABANDONED
    assert (retry.start, retry.end) == (dead.start, dead.end)


@pytest.mark.parametrize("channel", ["bulk", "mscons"])
def test_measurements_sent_over_http_are_allocated_by_the_worker(live_server, services, channel):
    tenant = TenantFactory(code=f"topology-allocation-{channel}")
    _, key = api_client_create(tenant=tenant, name="gateway")
    base = live_server.url + "/api/v1/"
    scheme = allocation_site(base, key)
    if channel == "mscons":
        assert post_mscons(base, key, allocation_values_as_mscons(base, key))["created"] == 12
    else:
        assert call(base, key, "POST", "measurements/bulk", {"measurements": ALLOCATION_VALUES})["created"] == 12

    path = f"allocation-schemes/{scheme['id']}/allocation?{ALLOCATION_HOUR}"
    statement_path = "statements/?consumer=APT-1&month=2026-03"
    first = call(base, key, "GET", path)
    assert first["up_to_date"] or first["status"] == "provisional"  # never a stale figure called final
    statement = call(base, key, "GET", statement_path)
    # Read right after the write: either it says it waits for the worker, or it has the new values.
    assert not statement["up_to_date"] or (statement["local_wh"], statement["residual_wh"]) == (192, 48)
    fresh = _wait_for(
        lambda: (answer := call(base, key, "GET", path))["up_to_date"] and answer, services, "the worker to allocate"
    )
    assert_allocated_hour(base, key, fresh)
    statement = call(base, key, "GET", statement_path)
    assert statement["up_to_date"] is True
    assert (statement["consumption_wh"], statement["local_wh"], statement["residual_wh"]) == (240, 192, 48)
