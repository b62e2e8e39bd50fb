import datetime as dt

import pytest

from core.integrity import ledger_violations
from core.testing import T0, UTC
from settlement.services import rule_change

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
def clean_ledger():
    def check():
        assert ledger_violations() == []

    return check
