"""Measurements mark exactly the local days they touch and ask for one settlement task."""

import datetime as dt

from allocation.measurements import measurements_ingest
from core.testing import iso
from settlement.tests.test_exact_marks import FEBRUARY, NOVEMBER, marked


def test_measurements_months_apart_mark_their_days_only(
    tenant, site, operator, broker_mode, django_capture_on_commit_callbacks
):
    values = [{"group": "APT-1", "start": iso(start), "energy_wh": 5} for start in (FEBRUARY, NOVEMBER)]
    with django_capture_on_commit_callbacks(execute=True):
        result = measurements_ingest(tenant=tenant, actor=operator, items=values)
    assert result.created == 2
    assert marked() == [dt.datetime(2026, 2, 9, 23, tzinfo=dt.UTC), dt.datetime(2026, 11, 19, 23, tzinfo=dt.UTC)]
    assert broker_mode == [("settle_dirty", tenant.pk)]
