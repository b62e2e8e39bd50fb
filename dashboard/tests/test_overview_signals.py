"""The overview's signals: the grid figures reconcile, waiting for settlement is told apart from an
imbalance, a day without data says so, and per group a badge for each kind of problem."""

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from core.quarters import local_date, local_day_bounds
from dashboard.overview_signals import CASES, GAPS, IMBALANCE, OVERDUE, STALE, WAITING
from dashboard.tests.conftest import DAY, DAY_START, local
from dashboard.tests.scheme_site import build_scheme_site
from settlement.engine.units import settle_units
from settlement.models import DirtyDay, SettlementCursor
from settlement.services import rule_change
from transactions.models import ClarificationCase, ClarificationStatus, ClarificationSubject

pytestmark = pytest.mark.django_db


def overview(client, day=DAY, **headers):
    response = client.get(reverse("dashboard:overview"), {"day": day.isoformat()}, **headers)
    assert response.status_code == 200
    return response


def row_of(response, code: str) -> dict:
    return next(row for row in response.context["rows"] if row["group"].code == code)


def html_row(response, code: str) -> str:
    match = re.search(rf'<tr class="depth-\d" data-group="{code}">(.*?)</tr>', response.content.decode(), re.S)
    assert match, code
    return match.group(1)


def test_german_overview_has_german_labels_and_numbers(client_in, site, book):
    book("SUPPLIER", "APT", local(10), local(11), 1_234_500, status="final")
    response = overview(client_in, HTTP_ACCEPT_LANGUAGE="de")
    text = response.content.decode()
    assert '<html lang="de"' in text
    for label in ("Übersicht", "Hierarchie", "Netzbezug", "Einspeisung", "Reststrom (Netzbezug \u2212 Einspeisung)"):
        assert label in text, label
    assert "1.234,500\u00a0kWh" in text  # the residual, exact so that its equation adds up
    assert "1.234.500" in text  # exact Wh in the hierarchy and the figures table
    assert "10.03.2026" in text and "Dienstag" in text
    chart = response.context["chart"]
    assert chart["unit"] == "kWh je Viertelstunde" and chart["text"]["final"] == "endgültig"


def test_residual_reconciles_with_the_top_balance_when_everything_is_settled(client_in, flows):
    response = overview(client_in)
    figures = response.context["reconciliation"]
    # Import 200 (SUPPLIER → APT), export 100 (PV → SUPPLIER); every group below is settled.
    assert (figures.grid_import_wh, figures.grid_export_wh, figures.residual_wh) == (200, 100, 100)
    assert (figures.top_net_wh, figures.unsettled_wh) == (100, 0)
    assert row_of(response, "GRID-CONNECTION")["day"]["net_wh"] == figures.top_net_wh
    assert b'data-testid="unsettled"' not in response.content
    assert b"every group below it is settled for this day" in response.content


def today_with_a_daily_consumer(site, make_group, operator, book):
    """A consumer settled daily onto the top balance, supplied in today's first hour: its daily
    window ends at the coming midnight, so its net waits there."""
    daily = make_group("DAILY", "consumer")
    top = site["GRID-CONNECTION"]
    rule_change(group=daily, actor=operator, targets=[(top, 10000)], interval="1d", effective_from=daily.valid_from)
    today = local_date(timezone.now())
    start = local_day_bounds(today)[0]
    book("SUPPLIER", "DAILY", start, start + dt.timedelta(hours=1), 300, status="final")
    return today


def test_a_net_waiting_for_its_daily_window_is_not_yet_settled_nor_an_imbalance(
    client_in, site, make_group, operator, book
):
    today = today_with_a_daily_consumer(site, make_group, operator, book)
    response = overview(client_in, day=today)
    figures = response.context["reconciliation"]
    assert (figures.residual_wh, figures.top_net_wh, figures.unsettled_wh) == (300, 0, 300)
    unsettled = re.search(r'data-testid="unsettled">(.*?)</tr>', response.content.decode(), re.S).group(1)
    assert "Not yet settled" in unsettled and "0.300\u00a0kWh" in unsettled
    signals = row_of(response, "DAILY")["signals"]
    assert (signals.state, signals.waiting_wh, signals.imbalance_wh) == (WAITING, 300, 0)
    assert 'data-signal="waiting"' in html_row(response, "DAILY")
    assert 'data-signal="imbalance"' not in response.content.decode()


@pytest.fixture
def unsettled_day(site, book, broker_mode, tenant):
    """PV → APT on DAY, recomputed by a settlement that ran before its windows ended (so nothing was
    settled), and the periodic job has looked past the day since: the nets sit where settled windows are."""
    book("PV", "APT", local(10), local(11), 400, status="final")
    settle_units(tenant_id=tenant.pk, units=[local_day_bounds(DAY)], now=local(10))
    SettlementCursor.objects.create(tenant=tenant, checked_until=timezone.now())
    assert not DirtyDay.objects.exists()


def test_a_net_left_in_settled_windows_is_an_imbalance(client_in, unsettled_day):
    response = overview(client_in)
    for code, net in (("APT", 400), ("PV", -400)):
        signals = row_of(response, code)["signals"]
        assert (signals.state, signals.imbalance_wh, signals.waiting_wh) == (IMBALANCE, net, 0)
        assert 'data-signal="imbalance"' in html_row(response, code)
        assert STALE not in signals.badges
    assert row_of(response, "GRID-CONNECTION")["signals"].state is None  # a top balance holds the residual
    assert response.context["reconciliation"].unsettled_wh == 0  # PV and APT cancel out within the site


def test_the_same_net_on_a_day_waiting_for_recomputation_is_waiting_and_stale(client_in, unsettled_day, tenant):
    DirtyDay.objects.create(tenant=tenant, day_start=DAY_START)
    response = overview(client_in)
    for code in ("APT", "PV"):
        signals = row_of(response, code)["signals"]
        assert signals.state == WAITING and signals.badges[STALE] == 1
        row = html_row(response, code)
        assert 'data-signal="waiting"' in row and 'data-badge="stale"' in row
    assert b'data-testid="recomputing"' in response.content


def test_a_day_without_data_says_no_data(client_in, flows):
    empty = overview(client_in, day=DAY + dt.timedelta(days=1))
    assert empty.context["has_data"] is False
    assert b'data-testid="no-data"' in empty.content and b'data-testid="figures-no-data"' in empty.content
    assert 'data-signal="no-data"' in html_row(empty, "APT")
    assert "final" not in html_row(empty, "APT")
    assert b'data-testid="reconciliation"' not in empty.content

    full = overview(client_in)
    assert full.context["has_data"] is True
    assert b'data-testid="no-data"' not in full.content
    assert 'data-signal="no-data"' not in html_row(full, "PV") and "final" in html_row(full, "PV")
    assert 'data-signal="no-data"' in html_row(full, "HOUSE")  # no booking touches HOUSE that day


def test_badge_for_quarter_hours_without_measurement(client_in, site, operator):
    build_scheme_site(site, operator)
    response = overview(client_in)
    assert row_of(response, "APT-2")["signals"].badges[GAPS] == 1  # only GAP (12:00) is missing
    assert 'data-badge="gaps"' in html_row(response, "APT-2")
    assert GAPS not in row_of(response, "APT")["signals"].badges
    assert 'data-badge="gaps"' not in html_row(response, "PV")


def case(tenant, status=ClarificationStatus.OPEN, **payload):
    return ClarificationCase.objects.create(
        tenant=tenant,
        reason="PERIOD_CLOSED",
        detail="closed",
        payload=payload,
        subject=ClarificationSubject.BOOKING,
        status=status,
    )


def test_badge_for_open_clarification_cases(client_in, site, tenant):
    case(tenant, source="SUPPLIER", destination="APT", start="2026-03-10T09:00:00Z")
    case(tenant, source="PV", destination="APT", start="2026-03-10T09:00:00Z")
    case(tenant, status=ClarificationStatus.DISMISSED, source="HOUSE", destination="APT")
    response = overview(client_in)
    assert row_of(response, "APT")["signals"].badges[CASES] == 2
    assert row_of(response, "SUPPLIER")["signals"].badges[CASES] == 1
    assert CASES not in row_of(response, "HOUSE")["signals"].badges  # its case is dismissed
    assert "2 open clarification cases" in html_row(response, "APT")
    assert 'data-badge="cases"' not in html_row(response, "HOUSE")


def test_badge_for_provisional_past_the_usual_delay(client_in, flows, book):
    # sup-apt on DAY (months ago) is still provisional; a provisional booking of today is not overdue.
    today = local_day_bounds(local_date(timezone.now()))[0]
    book("SUPPLIER", "HOUSE", today, today + dt.timedelta(hours=1), 50)
    response = overview(client_in)
    assert row_of(response, "SUPPLIER")["signals"].badges[OVERDUE] == local(10)
    assert 'data-badge="provisional_overdue"' in html_row(response, "APT")
    assert OVERDUE not in row_of(response, "PV")["signals"].badges  # PV's figures are final
    assert OVERDUE not in row_of(response, "HOUSE")["signals"].badges  # provisional only since today
    assert "provisional since 2026-03-10" in html_row(response, "SUPPLIER")
