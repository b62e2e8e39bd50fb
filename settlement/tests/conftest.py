import datetime as dt

import pytest

from settlement.rules import rule_change
from transactions.integrity import ledger_violations
from transactions.services import booking_create

UTC = dt.UTC
T0 = dt.datetime(2026, 1, 1, tzinfo=UTC)
DAY = dt.datetime(2026, 1, 15, tzinfo=UTC)  # a winter day: local day = [DAY - 1h, DAY + 23h)
NOW = dt.datetime(2026, 6, 1, 10, 7, tzinfo=UTC)


def at(hour: int, minute: int = 0, day: dt.datetime = DAY) -> dt.datetime:
    return day + dt.timedelta(hours=hour, minutes=minute)


@pytest.fixture
def site(make_group):
    """GRID and HOUSE and two more balances, a PV source and two consumers (no rules yet)."""
    return {
        code: make_group(code, kind)
        for code, kind in (
            ("GRID", "balance"),
            ("HOUSE", "balance"),
            ("H1", "balance"),
            ("H2", "balance"),
            ("FLOOR", "balance"),
            ("PV", "source"),
            ("APT", "consumer"),
            ("APT2", "consumer"),
        )
    }


@pytest.fixture
def rule(operator):
    def make(group, targets, interval="15min", effective_from=T0, now=NOW):
        return rule_change(
            group=group, actor=operator, targets=targets, interval=interval, effective_from=effective_from, now=now
        )

    return make


@pytest.fixture
def book(tenant, operator):
    def make(source, destination, start, end, energy_wh, status="provisional", external_id=None):
        return booking_create(
            tenant=tenant,
            actor=operator,
            source=source,
            destination=destination,
            start=start,
            end=end,
            energy_wh=energy_wh,
            status=status,
            external_id=external_id,
        ).booking

    return make


@pytest.fixture
def manual_settlement(monkeypatch):
    """Writes only mark days dirty (as with a broker and no worker); the test runs the engine."""
    from bkm.celery import app

    monkeypatch.setattr("settlement.dirty._enqueue", lambda tenant_id: None)
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = False
    yield
    app.conf.task_always_eager = previous


@pytest.fixture
def clean_ledger():
    def check():
        assert ledger_violations() == []

    return check
