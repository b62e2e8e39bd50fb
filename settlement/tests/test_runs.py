"""Runs, dirty tracking, the periodic job, the command and the checks."""

import datetime as dt
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from balance_groups.models import AuditEntry
from core.errors import InvalidInput, InvalidTimeAlignment
from core.integrity import registered_checks
from settlement.engine.windows import unit_bounds
from settlement.integrity import check_imbalances, check_settled_windows, check_settlement_keys
from settlement.models import DirtyDay, Imbalance, RunStatus, SettlementBooking, SettlementRun
from settlement.selectors import settlement_run_list
from settlement.services import settlement_dirty_process, settlement_run_execute, settlement_run_request
from settlement.tests.conftest import DAY, at
from transactions.models import Booking, BookingKind

pytestmark = pytest.mark.django_db


def test_units_are_local_days():
    # 2026-01-15 10:00Z is in the local day that starts 2026-01-14 23:00Z.
    assert unit_bounds(at(10), at(11)) == [(at(-1), at(23))]
    assert len(unit_bounds(at(-1), at(47))) == 2
    spring = unit_bounds(dt.datetime(2026, 3, 29, 12, tzinfo=dt.UTC), dt.datetime(2026, 3, 29, 13, tzinfo=dt.UTC))
    assert (spring[0][1] - spring[0][0]) == dt.timedelta(hours=23)


def test_request_in_process_without_broker_runs_and_records_counts(site, rule, book, operator, broker_mode):
    from celery import current_app as app

    rule(site["PV"], [(site["HOUSE"], 10000)])
    book(site["PV"], site["APT"], at(10), at(11), 1001)
    app.conf.task_always_eager = True

    run = settlement_run_request(
        tenant=site["PV"].tenant, actor=operator, start="2026-01-15T11:00:00+01:00", end="2026-01-15T12:00:00+01:00"
    )

    assert run.status == RunStatus.SUCCEEDED
    assert (run.start, run.end, run.trigger, run.requested_by) == (at(10), at(11), "manual", "user:operator")
    assert (run.groups, run.lines_read, run.bookings_created, run.days_total) == (3, 8, 4, 1)
    assert run.duration is not None and run.finished_at >= run.started_at
    assert list(settlement_run_list(tenant=site["PV"].tenant)) == [run]
    assert AuditEntry.objects.filter(action="settlement.request", object_id=str(run.pk)).exists()
    assert AuditEntry.objects.filter(action="settlement.run", object_id=str(run.pk)).exists()


def test_request_with_broker_enqueues_on_commit_only(
    site, operator, broker_mode, django_capture_on_commit_callbacks, monkeypatch
):
    sent = []
    monkeypatch.setattr("core.jobs.send", lambda name, kwargs: sent.append(kwargs["run_id"]))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        run = settlement_run_request(tenant=site["PV"].tenant, actor=operator, start=at(0), end=at(24))
        assert sent == []
    assert run.status == RunStatus.QUEUED
    for callback in callbacks:
        callback()
    assert sent == [str(run.pk)]


@pytest.mark.parametrize(
    ("start", "end", "error"),
    [
        ("2026-01-15T10:07:00Z", "2026-01-15T11:00:00Z", InvalidTimeAlignment),
        ("2026-01-15T11:00:00Z", "2026-01-15T10:00:00Z", InvalidInput),
        ("2026-01-15T10:00:00", "2026-01-15T11:00:00Z", InvalidInput),
        ("2024-01-01T00:00:00Z", "2026-01-01T00:00:00Z", InvalidInput),
    ],
)
def test_request_validates_the_window(site, operator, start, end, error):
    with pytest.raises(error):
        settlement_run_request(tenant=site["PV"].tenant, actor=operator, start=start, end=end)
    assert not SettlementRun.objects.exists()


def test_writes_mark_dirty_days_and_enqueue_on_commit(
    site, book, broker_mode, monkeypatch, django_capture_on_commit_callbacks
):
    enqueued = []
    monkeypatch.setattr("core.jobs.send", lambda name, kwargs: enqueued.append(kwargs["tenant_id"]))
    with django_capture_on_commit_callbacks(execute=True):
        book(site["GRID"], site["APT"], at(22), at(26), 400)  # crosses local midnight (23:00Z)
    assert sorted(DirtyDay.objects.values_list("day_start", flat=True)) == [at(-1), at(23)]
    assert enqueued == [site["GRID"].tenant.pk]
    assert not Imbalance.objects.exists()  # the worker computes them

    runs = settlement_dirty_process(tenant_id=site["GRID"].tenant.pk, now=at(48))

    assert [run.status for run in runs] == [RunStatus.SUCCEEDED]
    assert (runs[0].start, runs[0].end, runs[0].trigger) == (at(-1), at(47), "schedule")
    assert not DirtyDay.objects.exists()
    assert Imbalance.objects.filter(group=site["APT"]).count() == 16
    assert settlement_dirty_process(tenant_id=site["GRID"].tenant.pk, now=at(48)) == []  # nothing left


def test_periodic_job_settles_windows_that_ended_after_the_write(site, rule, book, broker_mode):
    rule(site["PV"], [(site["HOUSE"], 10000)], interval="1h")
    tenant = site["PV"].tenant
    book(site["PV"], site["APT"], at(10), at(10, 15), 100)
    settlement_dirty_process(tenant_id=tenant.pk, now=at(10, 20))  # hour not over yet
    assert not SettlementBooking.objects.exists()

    settlement_dirty_process(tenant_id=tenant.pk, now=at(11, 5))  # nothing written since: the cursor finds it

    assert SettlementBooking.objects.get().booking.energy_wh == 100


def test_a_periodic_run_over_days_without_lines_is_no_run(site, rule, book, broker_mode):
    rule(site["PV"], [(site["HOUSE"], 10000)], interval="1h")
    tenant = site["PV"].tenant
    book(site["PV"], site["APT"], at(10), at(10, 15), 100)
    assert len(settlement_dirty_process(tenant_id=tenant.pk, now=at(23, 30))) == 1  # the day is over
    # The next looks cover only days without a line: nothing is marked, no run recorded.
    assert settlement_dirty_process(tenant_id=tenant.pk, now=at(50)) == []
    assert settlement_dirty_process(tenant_id=tenant.pk, now=at(80)) == []
    assert not DirtyDay.objects.exists()
    assert SettlementRun.objects.count() == 1
    assert SettlementBooking.objects.get().booking.energy_wh == 100


def test_beat_schedule_entry_exists_every_15_minutes_utc():
    task = PeriodicTask.objects.get(task="settlement.settle_dirty")
    assert task.enabled
    assert (task.crontab.minute, task.crontab.hour, str(task.crontab.timezone)) == ("*/15", "*", "UTC")


def test_beat_migration_keeps_admin_edits(db):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("settlement.migrations.0004_beat_schedule")
    task = PeriodicTask.objects.get(name=migration.TASK_NAME)
    task.enabled = False
    task.crontab.minute = "*/5"
    task.crontab.save()
    task.save()

    migration.create_schedule(apps, None)

    task.refresh_from_db()
    assert (task.enabled, task.crontab.minute, PeriodicTask.objects.filter(name=migration.TASK_NAME).count()) == (
        False,
        "*/5",
        1,
    )


def test_settle_command_reports_progress_and_counts(site, rule, book, broker_mode):
    rule(site["PV"], [(site["HOUSE"], 10000)])
    book(site["PV"], site["APT"], at(10), at(11), 1001)
    out = StringIO()
    call_command(
        "settle",
        "--start",
        "2026-01-15T00:00:00Z",
        "--end",
        "2026-01-16T00:00:00Z",
        "--tenant",
        "sonnenhof",
        stdout=out,
    )
    text = out.getvalue()
    assert "day 2/2" in text
    assert "sonnenhof: succeeded" in text and "4 created" in text and "8 lines read" in text
    assert SettlementRun.objects.get().trigger == "command"
    with pytest.raises(CommandError):
        call_command("settle", "--start", "2026-01-15T00:07:00Z", "--end", "2026-01-16T00:00:00Z", stdout=out)
    with pytest.raises(CommandError):
        call_command("settle", "--start", "2026-01-15T00:00:00Z", "--end", "2026-01-16T00:00:00Z", "--tenant", "nobody")


def test_settlement_checks_are_registered_and_find_breakage(site, rule, book):
    assert {check_imbalances, check_settlement_keys, check_settled_windows} <= set(registered_checks())
    rule(site["PV"], [(site["HOUSE"], 10000)])
    book(site["PV"], site["APT"], at(10), at(10, 15), 100)
    assert check_imbalances() == check_settlement_keys() == check_settled_windows() == []

    Imbalance.objects.filter(group=site["APT"]).update(inflow_wh=99, net_wh=99)
    assert [v.check for v in check_imbalances()] == ["imbalance"]
    Imbalance.objects.filter(group=site["PV"]).update(inflow_wh=0, net_wh=-100)
    assert [v.check for v in check_settled_windows()] == ["settled_window"]
    SettlementBooking.objects.all().delete()
    assert [v.check for v in check_settlement_keys()] == ["settlement_key"]
    assert Booking.objects.filter(kind=BookingKind.SETTLEMENT).count() == 1


def test_dirty_days_are_skipped_by_the_checks(site, book, broker_mode):
    book(site["GRID"], site["APT"], at(10), at(10, 15), 100)
    assert check_imbalances() == []  # pending for the worker, not wrong
    DirtyDay.objects.all().delete()
    assert len(check_imbalances()) == 2


def test_day_boundary_is_local_midnight(site, rule, book):
    rule(site["PV"], [(site["HOUSE"], 10000)], interval="1d")
    book(site["PV"], site["APT"], DAY - dt.timedelta(hours=1), DAY, 96)  # 00:00-01:00 local on the 15th
    settlement = Booking.objects.get(kind=BookingKind.SETTLEMENT)
    assert (settlement.start, settlement.end) == (at(-1), at(23))
    assert settlement.lines.count() == 96 and set(settlement.lines.values_list("energy_wh", flat=True)) == {1}


def test_runs_and_imbalances_are_visible_in_admin(site, rule, book, client, django_user_model, broker_mode):
    rule(site["PV"], [(site["HOUSE"], 10000)])
    book(site["PV"], site["APT"], at(10), at(11), 1001)
    from settlement.services import settlement_run

    run = settlement_run(tenant=site["PV"].tenant, start=at(10), end=at(11))
    admin = django_user_model.objects.create_superuser("root", "root@example.org", "a-long-password-42")
    client.force_login(admin)
    for path in ("settlementrun", "imbalance", "settlementbooking", "dirtyday"):
        assert client.get(f"/admin/settlement/{path}/").status_code == 200
    page = client.get(f"/admin/settlement/settlementrun/{run.pk}/change/")
    assert page.status_code == 200
    assert b"Bookings created" in page.content and b"Lines read" in page.content


def test_a_run_whose_worker_stopped_is_abandoned_and_retried_within_minutes(site, rule, book, settings):
    from settlement.services import settlement_runs_reap

    rule(site["PV"], [(site["HOUSE"], 10000)])
    book(site["PV"], site["APT"], at(10), at(11), 1001)
    now = timezone.now()
    dead = SettlementRun.objects.create(
        tenant=site["PV"].tenant,
        start=at(0),
        end=at(24),
        status=RunStatus.RUNNING,
        started_at=now - dt.timedelta(minutes=7),
        heartbeat_at=now - dt.timedelta(seconds=settings.RUN_LEASE_SECONDS + 1),
    )
    alive = SettlementRun.objects.create(
        tenant=site["PV"].tenant, start=at(0), end=at(24), status=RunStatus.RUNNING, heartbeat_at=now
    )

    retries = settlement_runs_reap(now=now)

    dead.refresh_from_db()
    assert dead.status == RunStatus.ABANDONED and "its worker stopped" in dead.error
    assert SettlementRun.objects.get(pk=alive.pk).status == RunStatus.RUNNING
    assert [(retry.trigger, retry.status, retry.start, retry.end) for retry in retries] == [
        ("retry", RunStatus.SUCCEEDED, at(0), at(24))
    ]
    assert settlement_runs_reap(now=now) == []  # once
    assert PeriodicTask.objects.get(task="settlement.reap_abandoned").crontab.minute == "*"  # looked at every minute
    assert settlement_run_execute(run_id=dead.pk).status == RunStatus.ABANDONED  # a late redelivery: no effect


def test_a_run_that_fails_before_its_first_day_ends_failed_with_the_reason(site, monkeypatch):
    def broken(start, end):
        raise OverflowError("date value out of range")

    monkeypatch.setattr("settlement.services.unit_bounds", broken)
    run = SettlementRun.objects.create(tenant=site["PV"].tenant, start=at(0), end=at(24))
    run = settlement_run_execute(run_id=run.pk)
    assert run.status == RunStatus.FAILED
    assert run.error == "OverflowError: date value out of range"
    assert run.finished_at is not None
