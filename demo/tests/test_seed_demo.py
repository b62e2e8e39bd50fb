import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from allocation.models import AllocationBooking, AllocationScheme, Interchange, InterchangeStatus, Measurement
from allocation.selectors import scheme_allocation
from balance_groups.models import AuditAction, AuditEntry, BalanceGroup, User
from balance_groups.services import tenant_get_or_create
from core.integrity import ledger_violations
from core.quarters import local_day_bounds, site_zone
from demo import site as demo
from settlement.models import SettlementRule
from transactions.models import Booking, BookingKind, ClarificationCase, LedgerLine

DST_DAY = dt.date(2026, 3, 29)  # closed with March; 92 quarter-hours
APRIL_DAY = dt.date(2026, 4, 2)  # open; holds the corrected value
NOW = dt.datetime(2026, 12, 2, 6, 0, tzinfo=dt.UTC)


def day_window(day: dt.date) -> demo.DemoWindow:
    return demo.DemoWindow(*local_day_bounds(day))


@pytest.fixture
def short_demo(monkeypatch, tmp_path, settings):
    """The demo site over two days only, so the test stays quick."""
    monkeypatch.setattr(demo, "demo_windows", lambda now: [day_window(DST_DAY), day_window(APRIL_DAY)])
    settings.BASE_DIR = tmp_path


def counts():
    return {
        "groups": BalanceGroup.objects.count(),
        "rules": SettlementRule.objects.count(),
        "schemes": AllocationScheme.objects.count(),
        "measurements": list(Measurement.objects.values_list("group_id", "quarter_start", "energy_wh", "status")),
        "bookings": Booking.objects.count(),
        "lines": LedgerLine.objects.count(),
        "cases": ClarificationCase.objects.count(),
        "audit": AuditEntry.objects.exclude(action=AuditAction.SETTLEMENT_RUN).count(),
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
    assert first["schemes"] == 1
    assert len(first["measurements"]) == len(demo.METERED) * (92 + 96) - 1  # one value never delivered
    assert ledger_violations() == []
    assert "login 'operator'" in out.getvalue()


@pytest.mark.django_db
def test_the_product_computes_every_flow_from_the_measurements(short_demo):
    call_command("seed_demo", stdout=StringIO())
    assert not Booking.objects.filter(kind=BookingKind.MANUAL).exists()
    allocations = Booking.objects.filter(kind=BookingKind.ALLOCATION)
    assert allocations.count() == AllocationBooking.objects.count() > 92 * len(demo.METERED)
    assert Booking.objects.filter(kind=BookingKind.SETTLEMENT).exists()
    scheme = AllocationScheme.objects.get()
    assert (scheme.method, str(scheme.price_local_ct_per_kwh), str(scheme.base_fee_eur_per_month)) == (
        "dynamic",
        "27.5000",
        "9.90",
    )
    report = scheme_allocation(scheme=scheme, start=day_window(APRIL_DAY).start, end=day_window(APRIL_DAY).end)
    assert report["up_to_date"] and report["status"] == "final"
    for interval in report["intervals"]:
        for row in interval["sources"]:
            given = sum(part["energy_wh"] for part in row["allocated"])
            assert given + row["surplus_wh"] == row["generation_wh"]
        for row in interval["consumers"]:
            assert row["local_wh"] + row["residual_wh"] == row["consumption_wh"]
    evening = [i for i in report["intervals"] if i["start"].astimezone(site_zone()).hour == 20]
    assert any(row["generation_wh"] for i in evening for row in i["sources"] if row["group"] == demo_group("BATTERY"))


def demo_group(code: str):
    return BalanceGroup.objects.get(code=code).pk


@pytest.mark.django_db
def test_substitutes_are_replaced_by_final_values_and_the_gap_stays(short_demo):
    call_command("seed_demo", stdout=StringIO())
    assert not Measurement.objects.filter(quality="substitute").exists()
    assert not Measurement.objects.exclude(status="final").exists()  # both days are long past
    ingests = AuditEntry.objects.filter(action=AuditAction.MEASUREMENT_INGEST)
    assert sum(entry.data["replaced"] for entry in ingests) == len(demo.METERED) * (92 + 96) - 1  # all made final
    deliveries = demo.plan_deliveries(demo.demo_windows(NOW), demo.meter_values(demo.demo_windows(NOW)), NOW)
    assert deliveries.substitutes
    code, quarter = deliveries.gap
    assert not Measurement.objects.filter(group__code=code, quarter_start=quarter).exists()
    window = day_window(DST_DAY)
    report = scheme_allocation(
        scheme=AllocationScheme.objects.get(), start=window.start, end=window.end, resolution="1d"
    )
    assert report["intervals"][0]["gaps"] == 1
    assert report["intervals"][0]["status"] == "provisional"


@pytest.mark.django_db
def test_the_final_values_arrive_as_mscons_interchanges(short_demo):
    call_command("seed_demo", stdout=StringIO())
    interchanges = Interchange.objects.order_by("received_at")
    assert interchanges and {i.status for i in interchanges} == {InterchangeStatus.IMPORTED}
    assert sum(i.values for i in interchanges) == sum(i.replaced for i in interchanges)
    assert sum(i.replaced for i in interchanges) == len(demo.METERED) * (92 + 96) - 1
    assert sum(i.refused for i in interchanges) == 0
    assert b"MSCONS:D:04B" in interchanges[0].original_bytes()


@pytest.mark.django_db
def test_a_late_and_a_corrected_value_wait_as_clarification_cases(short_demo):
    call_command("seed_demo", stdout=StringIO())
    cases = {case.reason: case.payload for case in ClarificationCase.objects.all()}
    assert set(cases) == {"PERIOD_CLOSED", "MEASUREMENT_FINAL"}
    assert cases["PERIOD_CLOSED"]["group"] == demo.METERING_POINTS[demo.LATE_VALUE["group"]]
    corrected = Measurement.objects.get(group__code="APT-3", quarter_start=demo.CORRECTION["start"])
    assert cases["MEASUREMENT_FINAL"]["energy_wh"] == corrected.energy_wh + demo.CORRECTION["more_wh"]
    # March was closed first; then every month before the previous one (the cases came in between).
    history_until = local_day_bounds(demo.previous_month_start(timezone.now()))[0]
    assert history_until > local_day_bounds(demo.CLOSED_UNTIL_LOCAL_DAY)[0]
    assert {group.closed_until for group in BalanceGroup.objects.all()} == {history_until}


@pytest.mark.django_db
def test_an_older_demo_with_booked_flows_is_refused(short_demo, make_group):
    tenant, _ = tenant_get_or_create(code=demo.TENANT_CODE, name=demo.TENANT_NAME)
    source, destination = make_group("PV-ROOF", "source", tenant=tenant), make_group("APT-1", "consumer", tenant=tenant)
    start = day_window(APRIL_DAY).start
    Booking.objects.create(
        tenant=tenant,
        external_id="demo:20260402T0000Z:PV-ROOF:APT-1",
        source=source,
        destination=destination,
        start=start,
        end=start + dt.timedelta(minutes=15),
        energy_wh=1,
        kind=BookingKind.MANUAL,
    )
    with pytest.raises(CommandError, match="older demo site"):
        call_command("seed_demo", stdout=StringIO())


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


def test_meter_values_do_not_depend_on_the_window():
    week = demo.DemoWindow(dt.datetime(2026, 11, 2, tzinfo=dt.UTC), dt.datetime(2026, 11, 9, tzinfo=dt.UTC))
    day = demo.DemoWindow(dt.datetime(2026, 11, 5, tzinfo=dt.UTC), dt.datetime(2026, 11, 6, tzinfo=dt.UTC))
    in_week, in_day = demo.meter_values([week]), demo.meter_values([day])
    assert len(in_day) == 96 * len(demo.METERED)
    assert all(in_week[key] == energy for key, energy in in_day.items())


def test_profiles_are_plausible():
    window = demo.DemoWindow(*local_day_bounds(dt.date(2026, 11, 2))[:1], local_day_bounds(dt.date(2026, 11, 15))[1])
    values = demo.meter_values([window])
    quarters = sorted({quarter for _, quarter in values})
    zone = site_zone()
    consumers = [code for code, _ in demo.SCHEME["consumers"]]
    assert all(isinstance(energy, int) and energy >= 0 for energy in values.values())
    for quarter in quarters:
        hour = quarter.astimezone(zone).hour
        pv, battery = values[("PV-ROOF", quarter)], values[("BATTERY", quarter)]
        demand = sum(values[(code, quarter)] for code in consumers)
        if hour < 6 or hour >= 18:
            assert pv == 0  # November nights
        assert battery <= max(demand - pv, 0)  # the battery covers only what PV left, never exports
    by_hour = {}
    for (code, quarter), energy in values.items():
        by_hour.setdefault((code, quarter.astimezone(zone).hour), []).append(energy)

    def mean(code, hour):
        return sum(by_hour[(code, hour)]) / len(by_hour[(code, hour)])

    assert mean("PV-ROOF", 12) > mean("PV-ROOF", 9) > 0
    assert mean("APT-2", 19) > mean("APT-2", 7) > mean("APT-2", 3)
    assert mean("HEAT-PUMP", 4) > mean("HEAT-PUMP", 15)
    assert mean("WALLBOX", 19) > 0 == mean("WALLBOX", 12)
    assert mean("BATTERY", 19) > mean("BATTERY", 12)
    daily_pv = {}
    for (code, quarter), energy in values.items():
        if code == "PV-ROOF":
            daily_pv[quarter.astimezone(zone).date()] = daily_pv.get(quarter.astimezone(zone).date(), 0) + energy
    assert max(daily_pv.values()) > 2 * min(daily_pv.values())  # the weather varies by day


def test_deliveries_finalize_older_days_and_leave_one_gap():
    windows = [demo.DemoWindow(*local_day_bounds(dt.date(2026, 11, 16))[:1], NOW)]
    values = demo.meter_values(windows)
    deliveries = demo.plan_deliveries(windows, values, NOW)
    assert deliveries.final_before == local_day_bounds(dt.date(2026, 11, 30))[0]
    first = demo.first_delivery(values, deliveries, stored=set())
    final = demo.final_delivery(values, deliveries, final=set())
    assert len(first) == len(values) - 1
    substitutes = [item for item in first if item["quality"] == "substitute"]
    assert len(substitutes) == len(deliveries.substitutes) == 9
    assert all(item["status"] == "provisional" for item in first)
    assert {(item["group"], item["start"]) for item in substitutes} <= {
        (item["group"], item["start"]) for item in final
    }
    assert all(dt.datetime.fromisoformat(item["start"]) < deliveries.final_before for item in final)
    gap = (demo.METERING_POINTS[deliveries.gap[0]], deliveries.gap[1].isoformat())
    assert gap not in {(item["group"], item["start"]) for item in first + final}
    assert demo.first_delivery(values, deliveries, stored=set(values)) == []
