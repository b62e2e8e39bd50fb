"""A write marks exactly the local days it touches and asks for one settlement task."""

import datetime as dt

from django.db import transaction

from core import jobs
from core.testing import iso
from settlement.models import DirtyDay
from settlement.tests.conftest import at
from transactions.bulk import bookings_bulk_ingest
from transactions.services import booking_create

FEBRUARY = dt.datetime(2026, 2, 10, 10, tzinfo=dt.UTC)
NOVEMBER = dt.datetime(2026, 11, 20, 10, tzinfo=dt.UTC)


def marked() -> list[dt.datetime]:
    return sorted(DirtyDay.objects.values_list("day_start", flat=True))


def item(external_id, start, energy_wh=100):
    return {
        "external_id": external_id,
        "source": "GRID",
        "destination": "APT",
        "start": iso(start),
        "end": iso(start + dt.timedelta(minutes=15)),
        "energy_wh": energy_wh,
    }


def test_a_bulk_of_two_bookings_months_apart_marks_two_days_and_sends_one_task(
    site, operator, broker_mode, django_capture_on_commit_callbacks
):
    tenant = site["GRID"].tenant
    with django_capture_on_commit_callbacks(execute=True):
        result = bookings_bulk_ingest(
            tenant=tenant, actor=operator, items=[item("feb", FEBRUARY), item("nov", NOVEMBER)]
        )
    assert result.created == 2
    assert marked() == [dt.datetime(2026, 2, 9, 23, tzinfo=dt.UTC), dt.datetime(2026, 11, 19, 23, tzinfo=dt.UTC)]
    assert broker_mode == [("settle_dirty", tenant.pk)]


def test_replacing_a_booking_marks_its_old_and_new_day_and_sends_one_task(
    site, operator, broker_mode, django_capture_on_commit_callbacks
):
    tenant = site["GRID"].tenant
    bookings_bulk_ingest(tenant=tenant, actor=operator, items=[item("moved", FEBRUARY)])
    DirtyDay.objects.all().delete()
    broker_mode.clear()
    with django_capture_on_commit_callbacks(execute=True):
        booking_create(
            tenant=tenant,
            actor=operator,
            external_id="moved",
            source=site["GRID"],
            destination=site["APT"],
            start=NOVEMBER,
            end=NOVEMBER + dt.timedelta(minutes=15),
            energy_wh=100,
        )
    assert marked() == [dt.datetime(2026, 2, 9, 23, tzinfo=dt.UTC), dt.datetime(2026, 11, 19, 23, tzinfo=dt.UTC)]
    assert broker_mode == [("settle_dirty", tenant.pk)]


def test_a_task_asked_for_twice_in_one_transaction_is_sent_once(broker_mode, django_capture_on_commit_callbacks, db):
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        jobs.enqueue_on_commit("settlement.settle_dirty", tenant_id=1)
        jobs.enqueue_on_commit("settlement.settle_dirty", tenant_id=1)
        jobs.enqueue_on_commit("settlement.settle_dirty", tenant_id=2)
    assert broker_mode == [("settle_dirty", 1), ("settle_dirty", 2)]


def test_a_request_made_in_a_rolled_back_savepoint_does_not_hide_a_later_one(
    broker_mode, django_capture_on_commit_callbacks, db
):
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        try:
            with transaction.atomic():
                jobs.enqueue_on_commit("settlement.settle_dirty", tenant_id=1)
                jobs.enqueue_on_commit("settlement.settle_dirty", tenant_id=1)  # inside the same savepoint: once
                raise RuntimeError("the inner write fails")
        except RuntimeError:
            pass
        jobs.enqueue_on_commit("settlement.settle_dirty", tenant_id=1)  # outside it: sent
    assert broker_mode == [("settle_dirty", 1)]


def test_a_write_in_a_savepoint_after_the_first_request_is_covered_by_it(
    broker_mode, django_capture_on_commit_callbacks, db
):
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        jobs.enqueue_on_commit("settlement.settle_dirty", tenant_id=1)
        with transaction.atomic():
            jobs.enqueue_on_commit("settlement.settle_dirty", tenant_id=1)
    assert broker_mode == [("settle_dirty", 1)]


def test_the_days_in_process_are_settled_at_once(site, book):
    book(site["GRID"], site["APT"], at(22), at(26), 400)
    assert marked() == []  # in-process: settled in the writing transaction
