import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command

from balance_groups.models import BalanceGroup, User
from core.integrity import ledger_violations
from core.quarters import local_day_bounds
from demo import site as demo
from settlement.models import SettlementRule
from transactions.models import Booking, ClarificationCase, LedgerLine


@pytest.fixture
def short_demo(monkeypatch, tmp_path, settings):
    """The demo site over the spring DST day only, so the test stays quick."""
    start, end = local_day_bounds(dt.date(2026, 3, 29))
    monkeypatch.setattr(demo, "demo_windows", lambda now: [demo.DemoWindow(start, end)])
    settings.BASE_DIR = tmp_path


def counts():
    return {
        "groups": BalanceGroup.objects.count(),
        "rules": SettlementRule.objects.count(),
        "bookings": Booking.objects.count(),
        "lines": LedgerLine.objects.count(),
        "cases": ClarificationCase.objects.count(),
        "users": User.objects.count(),
    }


@pytest.mark.django_db
def test_seed_demo_twice_gives_the_same_site(short_demo):
    out = StringIO()
    call_command("seed_demo", stdout=out)
    first = counts()
    call_command("seed_demo", stdout=StringIO())
    assert counts() == first
    assert first["groups"] == len(demo.GROUPS)
    assert first["rules"] == len(demo.RULES)
    assert first["cases"] == 1
    assert Booking.objects.filter(kind="manual").count() > 92 * 5
    assert Booking.objects.filter(kind="settlement").exists()
    assert ledger_violations() == []
    assert "login 'operator'" in out.getvalue()


@pytest.mark.django_db
def test_demo_logins_use_a_generated_password(short_demo, settings):
    call_command("seed_demo", stdout=StringIO())
    password = (settings.BASE_DIR / ".demo_password").read_text().strip()
    assert len(password) >= 12
    operator = User.objects.get(username="operator")
    assert operator.check_password(password)
    assert operator.tenant.code == demo.TENANT_CODE
    assert not operator.is_staff
    assert User.objects.get(username="admin").is_superuser


def test_quarter_flows_balance_supply_and_demand():
    quarter = dt.datetime(2026, 6, 21, 10, 0, tzinfo=dt.UTC)
    flows, battery = demo.quarter_flows(quarter, 0)
    assert all(energy > 0 for _, _, energy in flows)
    produced = sum(energy for source, _, energy in flows if source == "PV-ROOF")
    assert produced > 0
    assert battery == sum(energy for _, dest, energy in flows if dest == "BATTERY")
    assert demo.quarter_flows(quarter, 0) == (flows, battery)
