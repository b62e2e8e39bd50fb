"""``check_ledger`` on PostgreSQL: checks at once on their own connections, all reading one snapshot."""

import datetime as dt
import re
import threading
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction

import core.integrity
from core.integrity import registered_checks, run_checks
from core.testing import T0
from transactions.models import LedgerLine
from transactions.services import booking_create

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def booking(tenant, operator, make_group):
    return booking_create(
        tenant=tenant,
        actor=operator,
        source=make_group("PV", "source"),
        destination=make_group("FLAT", "consumer"),
        start=T0,
        end=T0 + dt.timedelta(hours=1),
        energy_wh=1001,
    ).booking


def tamper(booking):
    line = booking.lines.order_by("quarter_start").first()
    LedgerLine.objects.filter(pk=line.pk).update(energy_wh=line.energy_wh + 1)


def committed_elsewhere(write):
    """Run ``write`` on a connection of its own, committed when this returns."""

    def run():
        try:
            write()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()


def check_ledger(*args) -> tuple[str, bool]:
    out = StringIO()
    try:
        call_command("check_ledger", *args, stdout=out)
    except CommandError as error:
        return out.getvalue() + str(error), False
    return out.getvalue(), True


def without_seconds(output: str) -> list[str]:
    return [
        re.sub(r" \(\d+\.\d s\)$", "", line) for line in output.splitlines() if line.startswith(("ok", "FAIL", "  "))
    ]


def test_checks_at_once_report_what_checks_one_by_one_report(booking):
    tamper(booking)
    one_by_one, passed_one = check_ledger("--jobs", "1")
    at_once, passed_at_once = check_ledger("--jobs", "3")

    assert not passed_one and not passed_at_once
    assert "FAIL lines_against_bookings: 1 violation(s)" in one_by_one
    assert without_seconds(at_once) == without_seconds(one_by_one)
    assert "3 at once" in at_once and "1 at once" in one_by_one
    assert len(without_seconds(at_once)) >= len(registered_checks())


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_write_committed_while_the_checks_run_is_not_seen_by_them(booking, monkeypatch, jobs):
    def check_that_writes_first(tenant_ids):
        committed_elsewhere(lambda: tamper(booking))
        return []

    monkeypatch.setattr(core.integrity, "_checks", [check_that_writes_first, *registered_checks()])
    output, passed = check_ledger("--jobs", str(jobs))
    assert passed, output

    monkeypatch.undo()
    output, passed = check_ledger("--jobs", str(jobs))
    assert not passed
    assert "FAIL lines_against_bookings: 1 violation(s)" in output


def test_inside_a_transaction_the_checks_see_its_writes(booking):
    with transaction.atomic():
        tamper(booking)
        checks = {violation.check for result in run_checks(jobs=2) for violation in result.violations}
        transaction.set_rollback(True)
    assert checks == {"lines_sum", "imbalance"}
    assert [violation for result in run_checks(jobs=2) for violation in result.violations] == []
