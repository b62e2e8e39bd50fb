"""Closing a month for a whole site: the checklist, the close, and what arrives after it.

The site's groups are valid from 31 October 2026 (local), so October holds one day of them and a
complete, final month is 96 quarter-hours per meter.
"""

import datetime as dt
import threading

import pytest
from django.db import connections

from allocation.measurements import measurements_ingest
from allocation.month_close import month_checklist, month_close
from allocation.services import scheme_change
from balance_groups.models import AuditEntry, BalanceGroup
from balance_groups.services import group_close, group_update
from core.errors import Conflict, InvalidInput, NotFound, PeriodClosed
from core.testing import iso
from settlement.models import DirtyDay
from settlement.services import rule_change
from transactions.models import Booking, ClarificationCase, ClarificationReason, ClarificationStatus
from transactions.services import booking_create

UTC = dt.UTC
LAST_DAY = dt.datetime(2026, 10, 30, 23, tzinfo=UTC)  # 2026-10-31 00:00 CET
NOVEMBER = dt.datetime(2026, 10, 31, 23, tzinfo=UTC)  # 2026-11-01 00:00 CET: the end of October
QUARTERS = 96
QUARTER = dt.timedelta(minutes=15)
CODES = ["APT-1", "APT-2", "GRID", "PV"]
UNKNOWN_POINT = "DE0009999999999999999999999999999"


@pytest.fixture
def house(tenant, operator, make_group):
    """GRID (top) with PV, APT-1 and APT-2 settled onto it; PV shared dynamically; SUPPLIER outside."""

    class House:
        grid = make_group("GRID", "balance", valid_from=LAST_DAY)
        pv = make_group("PV", "source", valid_from=LAST_DAY)
        apt1 = make_group("APT-1", "consumer", valid_from=LAST_DAY)
        apt2 = make_group("APT-2", "consumer", valid_from=LAST_DAY)
        supplier = make_group("SUPPLIER", "balance", valid_from=LAST_DAY)

    for group in (House.pv, House.apt1, House.apt2):
        rule_change(group=group, actor=operator, targets=[(House.grid, 10000)], effective_from=LAST_DAY)
    scheme_change(
        tenant=tenant,
        actor=operator,
        code="HAUS",
        name="Mieterstrom Haus",
        method="dynamic",
        sources=[House.pv],
        consumers=[(House.apt1, 5000), (House.apt2, 5000)],
        surplus_to=House.grid,
        residual_from=House.grid,
        effective_from=LAST_DAY,
    )
    return House


@pytest.fixture
def measure_day(tenant, house):
    """The day measured and final, but for the ``substitute`` and ``missing`` (code, quarter-hour) pairs."""

    def send(*, substitute=(), missing=()):
        items = []
        for code, wh in (("PV", 100), ("APT-1", 80), ("APT-2", 40)):
            for i in range(QUARTERS):
                if (code, i) in missing:
                    continue
                item = {"group": code, "start": iso(LAST_DAY + i * QUARTER), "energy_wh": wh}
                item.update({"quality": "substitute"} if (code, i) in substitute else {"status": "final"})
                items.append(item)
        assert not measurements_ingest(tenant=tenant, actor="system:meter", items=items).rejected
        return house

    return send


@pytest.fixture
def measured(measure_day):
    return measure_day()


def kinds(checklist) -> list[tuple[str, str | None, int]]:
    return [(b["kind"], b["group"] or b["scheme"], b["count"]) for b in checklist["blockers"]]


def closed_until(*groups) -> list:
    return [BalanceGroup.objects.get(pk=group.pk).closed_until for group in groups]


def everyone(house) -> tuple:
    return house.grid, house.pv, house.apt1, house.apt2


# The checklist


def test_a_complete_month_has_no_blockers(tenant, measured):
    checklist = month_checklist(tenant=tenant, top=measured.grid, month="2026-10")
    assert checklist["blockers"] == [] and checklist["notices"] == []
    assert (checklist["blocked"], checklist["provisional"]) == (False, False)
    assert (checklist["start"], checklist["end"], checklist["since"]) == (
        dt.datetime(2026, 9, 30, 22, tzinfo=UTC),
        NOVEMBER,
        dt.datetime(2026, 9, 30, 22, tzinfo=UTC),
    )
    assert [row["code"] for row in checklist["to_close"]] == CODES  # SUPPLIER is not part of the site
    assert all(row["closed_until"] is None for row in checklist["to_close"])
    assert checklist["already_closed"] == []
    assert checklist["top"] == {"id": measured.grid.pk, "code": "GRID", "name": measured.grid.name}


def test_a_missing_measurement_is_a_gap_of_its_scheme(tenant, house, measure_day):
    measure_day(missing={("APT-2", 94), ("APT-2", 95)})
    checklist = month_checklist(tenant=tenant, top=house.grid, month="2026-10")
    assert kinds(checklist) == [("gaps", "HAUS", 2)]
    gap = checklist["blockers"][0]
    assert (gap["severity"], gap["url_name"], gap["args"], gap["query"]) == (
        "provisional",
        "dashboard:scheme",
        ["HAUS"],
        {"day": "2026-10-31", "span": "month"},
    )
    assert gap["text"] == (
        "Scheme HAUS has 2 quarter-hours without every participant's measurement (first on 2026-10-31)."
    )
    assert (checklist["blocked"], checklist["provisional"]) == (False, True)


def test_provisional_measurements_and_what_was_computed_from_them(tenant, measure_day):
    measured = measure_day(substitute={("APT-1", 4)})
    checklist = month_checklist(tenant=tenant, top=measured.grid, month="2026-10")
    found = kinds(checklist)
    assert ("provisional_measurements", "APT-1", 1) in found
    # The allocation computed from it is provisional too, but follows the value: not listed again.
    assert found == [("provisional_measurements", "APT-1", 1)]
    measurement = next(b for b in checklist["blockers"] if b["kind"] == "provisional_measurements")
    assert (measurement["url_name"], measurement["args"], measurement["query"]) == (
        "dashboard:group",
        [str(measured.apt1.pk)],
        {"day": "2026-10-31"},
    )
    assert measurement["text"] == "APT-1 has 1 provisional measurement (first on 2026-10-31)."


def test_a_provisional_booking_is_shown_on_both_of_its_groups(tenant, measured, book):
    book("GRID", "APT-1", LAST_DAY + dt.timedelta(hours=2), LAST_DAY + dt.timedelta(hours=3), 40)
    checklist = month_checklist(tenant=tenant, top=measured.grid, month="2026-10")
    # Only the entered booking: the settlement bookings computed from it follow its status.
    assert kinds(checklist) == [("provisional_bookings", "APT-1", 1), ("provisional_bookings", "GRID", 1)]
    first = checklist["blockers"][0]
    assert first["query"] == {"day": "2026-10-31", "span": "week", "status": "provisional"}
    assert first["severity"] == "provisional"


def test_a_provisional_booking_of_another_month_does_not_count(tenant, measured, book):
    book("GRID", "APT-1", NOVEMBER, NOVEMBER + QUARTER, 40)
    assert month_checklist(tenant=tenant, top=measured.grid, month="2026-10")["blockers"] == []


def test_an_open_case_of_a_site_group_in_the_month_always_blocks(tenant, measured, measure):
    result = measure({measured.apt1: [99]}, start=LAST_DAY, status="final")  # contradicts a final value
    assert result.rejected and ClarificationCase.objects.filter(reason="MEASUREMENT_FINAL").count() == 1
    checklist = month_checklist(tenant=tenant, top=measured.grid, month="2026-10")
    assert kinds(checklist) == [("clarifications", None, 1)]
    case = checklist["blockers"][0]
    assert (case["severity"], case["url_name"], case["query"]) == (
        "always",
        "dashboard:clarifications",
        {"status": "open"},
    )
    assert case["text"] == "1 open clarification case concerns the site in the period."
    assert checklist["blocked"] is True


def test_cases_of_other_groups_months_or_no_group(tenant, measured, make_group):
    outside = make_group("FLAT-ELSEWHERE", "consumer")
    ClarificationCase.objects.create(
        tenant=tenant,
        reason=ClarificationReason.PERIOD_CLOSED,
        detail="another site",
        payload={"group": outside.code, "start": iso(LAST_DAY), "energy_wh": 5},
        subject="measurement",
    )
    ClarificationCase.objects.create(
        tenant=tenant,
        reason=ClarificationReason.PERIOD_CLOSED,
        detail="next month",
        payload={"source": "GRID", "destination": "APT-2", "start": iso(NOVEMBER), "end": iso(NOVEMBER + QUARTER)},
    )
    ClarificationCase.objects.create(
        tenant=tenant,
        reason=ClarificationReason.UNKNOWN_METERING_POINT,
        detail="a meter of no group",
        payload={
            "metering_point": UNKNOWN_POINT,
            "values": 4,
            "start": iso(LAST_DAY),
            "end": iso(LAST_DAY + 4 * QUARTER),
        },
        subject="measurement",
    )
    checklist = month_checklist(tenant=tenant, top=measured.grid, month="2026-10")
    assert checklist["blockers"] == []
    assert [(n["kind"], n["count"]) for n in checklist["notices"]] == [("unattributed_clarifications", 1)]
    # Once a group of the site carries the metering point, the case is the site's.
    group_update(group=measured.apt2, actor="system:test", metering_point=UNKNOWN_POINT)
    checklist = month_checklist(tenant=tenant, top=measured.grid, month="2026-10")
    assert kinds(checklist) == [("clarifications", None, 1)] and checklist["notices"] == []


def test_a_day_waiting_for_the_settlement_run_always_blocks(tenant, measured, broker_mode, book):
    book("GRID", "APT-1", LAST_DAY + dt.timedelta(hours=5), LAST_DAY + dt.timedelta(hours=6), 40, status="final")
    assert DirtyDay.objects.filter(tenant=tenant).exists()  # no worker ran
    checklist = month_checklist(tenant=tenant, top=measured.grid, month="2026-10")
    assert kinds(checklist) == [("stale_days", None, 1)]
    stale = checklist["blockers"][0]
    assert (stale["severity"], stale["url_name"], stale["text"]) == (
        "always",
        "dashboard:runs",
        "1 day waits for the settlement run (first: 2026-10-31).",
    )
    with pytest.raises(Conflict, match="waits for the settlement run"):
        month_close(tenant=tenant, top=measured.grid, month="2026-10", actor="system:test", accept_provisional=True)
    assert closed_until(*everyone(measured)) == [None] * 4


def test_a_month_that_has_not_ended_cannot_be_closed(tenant, house):
    checklist = month_checklist(tenant=tenant, top=house.grid, month="2099-12")
    assert ("month_running", None, 1) in kinds(checklist)
    assert checklist["blocked"] is True
    with pytest.raises(Conflict, match="has not ended yet"):
        month_close(tenant=tenant, top=house.grid, month="2099-12", actor="system:test", accept_provisional=True)


def test_an_earlier_month_left_open_is_checked_with_the_month(tenant, measure_day):
    """Closing November closes October too: October's provisional value is on November's list."""
    measured = measure_day(substitute={("APT-1", 4)})
    checklist = month_checklist(tenant=tenant, top=measured.grid, month="2026-11")
    assert checklist["since"] == LAST_DAY
    found = next(b for b in checklist["blockers"] if b["kind"] == "provisional_measurements")
    assert (found["group"], found["query"]) == ("APT-1", {"day": "2026-10-31"})


def test_a_bad_month_or_another_tenants_top_is_refused(tenant, other_tenant, house):
    with pytest.raises(InvalidInput, match="YYYY-MM"):
        month_checklist(tenant=tenant, top=house.grid, month="2026-13")
    with pytest.raises(NotFound):
        month_checklist(tenant=other_tenant, top=house.grid, month="2026-10")
    with pytest.raises(NotFound):
        month_close(tenant=other_tenant, top=house.grid, month="2026-10", actor="system:test")
    assert closed_until(house.grid) == [None]


# The close


def test_the_close_closes_every_group_of_the_site_and_is_audited(tenant, measured, operator):
    result = month_close(tenant=tenant, top=measured.grid, month="2026-10", actor=operator, confirmed_groups=CODES)
    assert [row["code"] for row in result["closed"]] == CODES
    assert all(row["closed_until_before"] is None for row in result["closed"])
    assert (result["month"], result["end"], result["accepted_provisional"], result["accepted"]) == (
        "2026-10",
        NOVEMBER,
        False,
        [],
    )
    assert closed_until(*everyone(measured)) == [NOVEMBER] * 4
    assert closed_until(measured.supplier) == [None]
    entry = AuditEntry.objects.get(action="site.month_close")
    assert (entry.actor, entry.object_id, entry.tenant_id) == ("user:operator", str(measured.grid.pk), tenant.pk)
    assert entry.data == {
        "month": "2026-10",
        "until": NOVEMBER.isoformat(),
        "groups": CODES,
        "accepted_provisional": False,
        "accepted": [],
    }
    assert AuditEntry.objects.filter(action="group.close").count() == 4


def test_provisional_figures_refuse_the_close_unless_accepted(tenant, measure_day, operator):
    measured = measure_day(substitute={("APT-1", 4)})
    with pytest.raises(Conflict) as refused:
        month_close(tenant=tenant, top=measured.grid, month="2026-10", actor=operator, confirmed_groups=CODES)
    assert "APT-1 has 1 provisional measurement (first on 2026-10-31)." in refused.value.errors["blockers"]
    assert refused.value.detail.startswith("The month cannot be closed:")
    assert closed_until(*everyone(measured)) == [None] * 4
    assert not AuditEntry.objects.filter(action="site.month_close").exists()

    result = month_close(
        tenant=tenant,
        top=measured.grid,
        month="2026-10",
        actor=operator,
        accept_provisional=True,
        confirmed_groups=CODES,
    )
    assert result["accepted_provisional"] is True
    assert closed_until(*everyone(measured)) == [NOVEMBER] * 4
    data = AuditEntry.objects.get(action="site.month_close").data
    assert data["accepted_provisional"] is True
    assert {
        "kind": "provisional_measurements",
        "count": 1,
        "text": "APT-1 has 1 provisional measurement (first on 2026-10-31).",
    } in data["accepted"]


def test_accepting_provisional_figures_does_not_override_an_open_case(tenant, measured, measure, operator):
    measure({measured.apt1: [99]}, start=LAST_DAY, status="final")
    with pytest.raises(Conflict, match="open clarification case"):
        month_close(tenant=tenant, top=measured.grid, month="2026-10", actor=operator, accept_provisional=True)
    assert closed_until(*everyone(measured)) == [None] * 4


def test_a_confirmation_that_names_other_groups_is_refused(tenant, measured, operator):
    with pytest.raises(Conflict, match="changed meanwhile: now APT-1, APT-2, GRID, PV") as refused:
        month_close(tenant=tenant, top=measured.grid, month="2026-10", actor=operator, confirmed_groups=["GRID"])
    assert "confirm" in refused.value.errors
    assert closed_until(*everyone(measured)) == [None] * 4


def test_groups_closed_already_are_skipped_and_a_second_close_is_refused(tenant, measured, operator):
    group_close(group=measured.pv, actor=operator, until=NOVEMBER + dt.timedelta(days=1))
    group_close(group=measured.apt2, actor=operator, until=LAST_DAY + dt.timedelta(hours=6))
    checklist = month_checklist(tenant=tenant, top=measured.grid, month="2026-10")
    assert [row["code"] for row in checklist["already_closed"]] == ["PV"]
    assert [(row["code"], row["closed_until"]) for row in checklist["to_close"]] == [
        ("APT-1", None),
        ("APT-2", LAST_DAY + dt.timedelta(hours=6)),
        ("GRID", None),
    ]
    result = month_close(
        tenant=tenant, top=measured.grid, month="2026-10", actor=operator, confirmed_groups=["APT-1", "APT-2", "GRID"]
    )
    assert result["already_closed"] == ["PV"]
    assert closed_until(measured.grid, measured.apt1, measured.apt2, measured.pv) == [NOVEMBER] * 3 + [
        NOVEMBER + dt.timedelta(days=1)  # closing never reopens
    ]
    with pytest.raises(Conflict, match="closed up to the end of 2026-10 already"):
        month_close(tenant=tenant, top=measured.grid, month="2026-10", actor=operator, confirmed_groups=[])


def test_after_the_close_late_input_is_refused_and_kept(tenant, measured, measure, operator):
    month_close(tenant=tenant, top=measured.grid, month="2026-10", actor=operator)
    result = measure({measured.apt2: [41]}, start=LAST_DAY + 8 * QUARTER, quality="substitute")
    assert [refusal["code"] for refusal in result.rejected] == ["PERIOD_CLOSED"]
    item = {"source": "GRID", "destination": "APT-1", "start": iso(LAST_DAY), "end": iso(LAST_DAY + QUARTER)}
    with pytest.raises(PeriodClosed):
        booking_create(
            tenant=tenant,
            actor=operator,
            source="GRID",
            destination="APT-1",
            start=LAST_DAY,
            end=LAST_DAY + QUARTER,
            energy_wh=10,
            payload={**item, "energy_wh": 10},
        )
    cases = ClarificationCase.objects.filter(tenant=tenant, reason="PERIOD_CLOSED", status=ClarificationStatus.OPEN)
    assert sorted(case.subject for case in cases) == ["booking", "measurement"]
    assert not Booking.objects.filter(tenant=tenant, kind="manual").exists()


# Concurrency: a booking arriving during the close (PostgreSQL: SQLite ignores the row locks)


def _someone_waits_for_a_lock() -> bool:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0


def _wait_for_a_waiter(seconds: float = 10) -> bool:
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _someone_waits_for_a_lock():
            return True
        time.sleep(0.02)
    return False


LATE = {
    "source": "GRID",
    "destination": "APT-1",
    "start": iso(LAST_DAY),
    "end": iso(LAST_DAY + QUARTER),
    "energy_wh": 10,
}


def _late_booking(tenant, outcome: dict) -> None:
    try:
        booking_create(
            tenant=tenant,
            actor="system:meter",
            source="GRID",
            destination="APT-1",
            start=LAST_DAY,
            end=LAST_DAY + QUARTER,
            energy_wh=10,
            payload=LATE,
        )
        outcome["booking"] = "stored"
    except PeriodClosed:
        outcome["booking"] = "PERIOD_CLOSED"
    except BaseException as error:
        outcome["booking"] = repr(error)


def _assert_all_or_nothing(house) -> list:
    until = closed_until(*everyone(house))
    assert until in ([NOVEMBER] * 4, [None] * 4), f"a half-closed site: {until}"
    return until


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_booking_arriving_while_the_close_holds_the_site_is_refused_and_kept(tenant, measured, monkeypatch):
    from allocation import month_close as module

    outcome, locked = {}, threading.Event()
    original_lock = module._lock

    def lock_then_hold(group_ids):
        groups = original_lock(group_ids)
        if not locked.is_set():
            locked.set()
            outcome["waited"] = _wait_for_a_waiter()  # the booking queues behind the close's locks
        return groups

    monkeypatch.setattr(module, "_lock", lock_then_hold)

    def close():
        try:
            outcome["close"] = month_close(tenant=tenant, top=measured.grid, month="2026-10", actor="system:operator")
        except BaseException as error:
            outcome["close"] = repr(error)
        finally:
            locked.set()
            connections.close_all()

    closer = threading.Thread(target=close)
    closer.start()
    assert locked.wait(timeout=30)
    _late_booking(tenant, outcome)
    closer.join(timeout=60)
    assert outcome["waited"] is True
    assert isinstance(outcome["close"], dict), outcome["close"]
    assert outcome["booking"] == "PERIOD_CLOSED"
    assert _assert_all_or_nothing(measured) == [NOVEMBER] * 4
    assert not Booking.objects.filter(tenant=tenant, kind="manual").exists()
    assert ClarificationCase.objects.filter(tenant=tenant, reason="PERIOD_CLOSED", payload=LATE).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("accept_provisional", [False, True])
def test_a_booking_that_got_in_first_is_seen_by_the_close(tenant, measured, monkeypatch, accept_provisional):
    """The booking holds its share locks when the close starts: the close waits, then re-reads its
    checklist and finds the new provisional booking (and its day waiting for the run)."""
    from transactions import services

    outcome, checked, booker = {}, threading.Event(), {}
    original_check = services.check_bookable

    def check_then_hold(**kwargs):
        original_check(**kwargs)
        if threading.current_thread() is booker.get("thread"):
            checked.set()
            outcome["waited"] = _wait_for_a_waiter()  # the close queues behind the booking's locks

    monkeypatch.setattr(services, "check_bookable", check_then_hold)

    def book():
        try:
            _late_booking(tenant, outcome)
        finally:
            checked.set()
            connections.close_all()

    thread = threading.Thread(target=book)
    booker["thread"] = thread
    thread.start()
    assert checked.wait(timeout=30)
    try:
        outcome["close"] = month_close(
            tenant=tenant,
            top=measured.grid,
            month="2026-10",
            actor="system:operator",
            accept_provisional=accept_provisional,
        )
    except Conflict as error:
        outcome["close"] = error
    thread.join(timeout=60)
    assert outcome["waited"] is True
    assert outcome["booking"] == "stored"
    booking = Booking.objects.get(tenant=tenant, kind="manual")
    until = _assert_all_or_nothing(measured)
    if accept_provisional and until == [NOVEMBER] * 4:
        # The close came after the booking's day was settled: it closed over a booking it had seen.
        assert booking.created_at < AuditEntry.objects.get(action="site.month_close").at
    else:
        assert isinstance(outcome["close"], Conflict)
        assert until == [None] * 4
        if not accept_provisional:
            assert (
                "GRID has 1 provisional booking in the period (first on 2026-10-31)."
                in outcome["close"].errors["blockers"]
            )
