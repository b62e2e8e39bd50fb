"""What a scheme allocated, over the API: hand-computed figures per resolution, DST days, gaps,
status and freshness; and a scheme consumer's local/residual split in its group balance."""

import datetime as dt

import pytest
from rest_framework.renderers import JSONRenderer

from allocation.models import AllocationScheme
from allocation.scheme_serializers import SchemeAllocationSerializer
from allocation.selectors import consumer_allocation
from allocation.services import scheme_change
from balance_groups.api import GroupBalanceSplitSerializer
from core.quarters import QUARTER
from core.testing import T0, iso
from settlement.selectors import group_balance

SCHEMES = "/api/v1/allocation-schemes/"
HOUR = T0 + dt.timedelta(hours=1)
SPRING_DAY = (dt.datetime(2026, 3, 28, 23, tzinfo=dt.UTC), dt.datetime(2026, 3, 29, 22, tzinfo=dt.UTC))
AUTUMN_DAY = (dt.datetime(2026, 10, 24, 22, tzinfo=dt.UTC), dt.datetime(2026, 10, 25, 23, tzinfo=dt.UTC))


def read(api, scheme, start, end, resolution="15min"):
    response = api.get(
        f"{SCHEMES}{scheme.pk}/allocation", {"start": iso(start), "end": iso(end), "resolution": resolution}
    )
    assert response.status_code == 200, response.json()
    return response.json()


def figures(interval: dict) -> dict:
    """An interval's figures by group code: sources as (generation, surplus, unallocated, {consumer: Wh}),
    consumers as (consumption, local, residual, unallocated)."""
    out = {}
    for row in interval["sources"]:
        allocated = {item["consumer_code"]: item["energy_wh"] for item in row["allocated"]}
        out[row["group_code"]] = (row["generation_wh"], row["surplus_wh"], row["unallocated_wh"], allocated)
    for row in interval["consumers"]:
        out[row["group_code"]] = (row["consumption_wh"], row["local_wh"], row["residual_wh"], row["unallocated_wh"])
    return out


@pytest.fixture
def hour(site, make_scheme, measure):
    """Dynamic, PV before the battery; four quarter-hours, the last a gap (APT-2 sent nothing).

    q0: PV 300 split 400:200 -> 200/100; the battery's 500 covers the rest (200/100), 200 surplus.
    q1: PV 1000 covers 301 + 100, 599 surplus. q2: PV 101 for 100:100, a tie -> 51 to APT-1 (listed
    first), 50 to APT-2; residual 49 and 50. q3: a gap, nothing allocated.
    """
    scheme = make_scheme("dynamic")
    result = measure(
        {
            site.pv: [300, 1000, 101, 50],
            site.battery: [500, 0, 0, 0],
            site.apt1: [400, 301, 100, 10],
            site.apt2: [200, 100, 100],
        }
    )
    assert result.rejected == []
    return scheme


def test_quarter_hours_hand_computed(api, site, hour):
    body = read(api, hour, T0, HOUR)
    assert (body["scheme"], body["code"]) == (str(hour.pk), "HAUS")
    assert (body["start"], body["end"], body["status"], body["up_to_date"]) == (iso(T0), iso(HOUR), "provisional", True)
    assert [(row["start"], row["end"], row["gaps"]) for row in body["intervals"]] == [
        (iso(T0 + i * QUARTER), iso(T0 + (i + 1) * QUARTER), int(i == 3)) for i in range(4)
    ]
    q0, q1, q2, q3 = (figures(row) for row in body["intervals"])
    assert q0 == {
        "PV": (300, 0, 0, {"APT-1": 200, "APT-2": 100}),
        "BAT": (500, 200, 0, {"APT-1": 200, "APT-2": 100}),
        "APT-1": (400, 400, 0, 0),
        "APT-2": (200, 200, 0, 0),
    }
    assert q1 == {
        "PV": (1000, 599, 0, {"APT-1": 301, "APT-2": 100}),
        "BAT": (0, 0, 0, {"APT-1": 0, "APT-2": 0}),
        "APT-1": (301, 301, 0, 0),
        "APT-2": (100, 100, 0, 0),
    }
    assert q2["PV"] == (101, 0, 0, {"APT-1": 51, "APT-2": 50})
    assert (q2["APT-1"], q2["APT-2"]) == ((100, 51, 49, 0), (100, 50, 50, 0))
    assert q3 == {
        "PV": (50, 0, 50, {"APT-1": 0, "APT-2": 0}),
        "BAT": (0, 0, 0, {"APT-1": 0, "APT-2": 0}),
        "APT-1": (10, 0, 0, 10),
        "APT-2": (0, 0, 0, 0),
    }
    group_ids = {row["group_code"]: row["group"] for row in body["intervals"][0]["sources"]}
    assert group_ids == {"PV": str(site.pv.pk), "BAT": str(site.battery.pk)}


def test_hours_sum_their_quarter_hours(api, hour):
    body = read(api, hour, T0 - dt.timedelta(hours=1), HOUR, "1h")
    before, the_hour = body["intervals"]
    assert before["gaps"] == 0 and before["start"] == iso(T0 - dt.timedelta(hours=1))  # before the scheme
    assert before["sources"][0]["generation_wh"] == 0
    assert the_hour["gaps"] == 1 and the_hour["status"] == "provisional"
    assert figures(the_hour) == {
        "PV": (1451, 599, 50, {"APT-1": 552, "APT-2": 250}),
        "BAT": (500, 200, 0, {"APT-1": 200, "APT-2": 100}),
        "APT-1": (811, 752, 49, 10),
        "APT-2": (400, 350, 50, 0),
    }


def test_a_window_clipped_inside_an_hour(api, hour):
    body = read(api, hour, T0 + QUARTER, T0 + 3 * QUARTER, "1h")
    assert [(row["start"], row["end"]) for row in body["intervals"]] == [(iso(T0 + QUARTER), iso(T0 + 3 * QUARTER))]
    assert figures(body["intervals"][0])["APT-1"] == (401, 352, 49, 0)


def test_final_measurements_make_a_final_interval(api, site, make_scheme, measure):
    scheme = make_scheme("static", sources=[site.pv])
    measure({site.pv: [100], site.apt1: [100], site.apt2: [10]}, status="final")
    body = read(api, scheme, T0, T0 + QUARTER)
    assert body["status"] == "final" and body["intervals"][0]["status"] == "final"
    # static 50/50: APT-1 gets its 50, APT-2 only the 10 it used; 40 surplus, APT-1's other 50 residual.
    assert figures(body["intervals"][0]) == {
        "PV": (100, 40, 0, {"APT-1": 50, "APT-2": 10}),
        "APT-1": (100, 50, 50, 0),
        "APT-2": (10, 10, 0, 0),
    }
    assert read(api, scheme, T0, T0 + 2 * QUARTER)["status"] == "provisional"  # the second is a gap


def dst_scheme(site, make_scheme, measure, day):
    """Static 60/40 from the PV; each quarter-hour of ``day`` PV 100, APT-1 100, APT-2 10:
    APT-1 60 local and 40 residual, APT-2 its 10, 30 surplus."""
    scheme = make_scheme("static", sources=[site.pv], consumers=[(site.apt1, 6000), (site.apt2, 4000)])
    quarters = int((day[1] - day[0]) / QUARTER)
    result = measure({site.pv: [100] * quarters, site.apt1: [100] * quarters, site.apt2: [10] * quarters}, day[0])
    assert result.rejected == [] and result.created == 3 * quarters
    return scheme, quarters


@pytest.mark.parametrize(("day", "quarters"), [(SPRING_DAY, 92), (AUTUMN_DAY, 100)])
def test_local_days_of_dst_changes(api, site, make_scheme, measure, day, quarters):
    scheme, measured = dst_scheme(site, make_scheme, measure, day)
    assert measured == quarters
    next_day = day[1] + dt.timedelta(days=1)
    body = read(api, scheme, day[0], next_day, "1d")
    the_day, after = body["intervals"]
    assert (the_day["start"], the_day["end"], after["end"]) == (iso(day[0]), iso(day[1]), iso(next_day))
    assert the_day["gaps"] == 0 and after["gaps"] == 96  # nothing measured the day after: all gaps
    n = quarters
    assert figures(the_day) == {
        "PV": (100 * n, 30 * n, 0, {"APT-1": 60 * n, "APT-2": 10 * n}),
        "APT-1": (100 * n, 60 * n, 40 * n, 0),
        "APT-2": (10 * n, 10 * n, 0, 0),
    }
    quarter_hours = read(api, scheme, *day)["intervals"]
    assert len(quarter_hours) == n and {figures(row)["APT-1"] for row in quarter_hours} == {(100, 60, 40, 0)}
    assert len(read(api, scheme, *day, "1h")["intervals"]) == n // 4


def test_up_to_date_is_false_while_a_change_waits(api, site, make_scheme, measure, broker_mode):
    scheme = make_scheme("dynamic", sources=[site.pv])
    measure({site.pv: [100], site.apt1: [100], site.apt2: [0]}, status="final")
    body = read(api, scheme, T0, T0 + QUARTER)
    assert body["up_to_date"] is False and body["status"] == "provisional"
    assert body["intervals"][0]["status"] == "provisional" and body["intervals"][0]["gaps"] == 0
    assert figures(body["intervals"][0])["APT-1"] == (100, 0, 0, 100)  # measured, not yet allocated


def test_the_response_has_the_documented_shape(api, hour):
    body = read(api, hour, T0, HOUR, "1h")
    documented = SchemeAllocationSerializer()
    interval = documented.fields["intervals"].child
    source = interval.fields["sources"].child
    assert list(body) == list(documented.fields)
    assert list(body["intervals"][0]) == list(interval.fields)
    assert list(body["intervals"][0]["sources"][0]) == list(source.fields)
    assert list(body["intervals"][0]["sources"][0]["allocated"][0]) == list(source.fields["allocated"].child.fields)
    assert list(body["intervals"][0]["consumers"][0]) == list(interval.fields["consumers"].child.fields)
    check = SchemeAllocationSerializer(data=body)
    assert check.is_valid(), check.errors


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"end": iso(HOUR)}, "start"),
        ({"start": iso(T0)}, "end"),
        ({"start": "yesterday", "end": iso(HOUR)}, "start"),
        ({"start": "2026-01-01T00:00:00", "end": iso(HOUR)}, "start"),
        ({"start": iso(T0), "end": iso(HOUR), "resolution": "5min"}, "resolution"),
        ({"start": iso(HOUR), "end": iso(T0)}, "end"),
        ({"start": iso(T0), "end": iso(T0)}, "end"),
        ({"start": iso(T0), "end": iso(T0 + dt.timedelta(days=105))}, "end"),  # > 10,000 quarter-hours
        ({"start": iso(T0), "end": iso(T0 + dt.timedelta(days=401)), "resolution": "1d"}, "end"),
    ],
)
def test_bad_windows_are_400_with_the_field(api, hour, params, field):
    response = api.get(f"{SCHEMES}{hour.pk}/allocation", params)
    assert response.status_code == 400, response.json()
    assert response.json()["code"] == "VALIDATION_ERROR" and field in response.json()["errors"]


def test_a_misaligned_window_is_an_alignment_error(api, hour):
    response = api.get(f"{SCHEMES}{hour.pk}/allocation", {"start": "2026-01-01T00:05:00Z", "end": iso(HOUR)})
    assert response.status_code == 400 and response.json()["code"] == "INVALID_TIME_ALIGNMENT"


def test_too_many_figures_for_the_scheme_are_400(api, hour, monkeypatch):
    monkeypatch.setattr("allocation.scheme_api.MAX_FIGURES", 4 * 8)  # 2 sources x (2 consumers + 1) + 2
    assert read(api, hour, T0, HOUR)["intervals"]
    response = api.get(f"{SCHEMES}{hour.pk}/allocation", {"start": iso(T0), "end": iso(HOUR + QUARTER)})
    assert response.status_code == 400 and "too many figures" in response.json()["errors"]["end"][0]


def test_a_read_only_client_reads_the_allocation(readonly_api, hour):
    assert read(readonly_api, hour, T0, HOUR)["code"] == "HAUS"


def test_every_version_of_the_code_is_read(api, site, make_scheme, measure):
    """A later version (static) from q2 on: the read of the first version covers both."""
    first = make_scheme("dynamic", sources=[site.pv])
    second = scheme_change(
        tenant=first.tenant,
        actor="system:test",
        code="HAUS",
        name="Mieterstrom Haus",
        method="static",
        sources=[site.pv],
        consumers=[(site.apt1, 5000), (site.apt2, 5000)],
        surplus_to=site.grid,
        residual_from=site.grid,
        effective_from=T0 + 2 * QUARTER,
        now=T0,
    )
    measure({site.pv: [100] * 4, site.apt1: [90] * 4, site.apt2: [10] * 4})
    assert AllocationScheme.objects.get(pk=first.pk).effective_until == second.effective_from
    quarters = [figures(row)["PV"] for row in read(api, first, T0, HOUR)["intervals"]]
    assert quarters == [(100, 0, 0, {"APT-1": 90, "APT-2": 10})] * 2 + [(100, 40, 0, {"APT-1": 50, "APT-2": 10})] * 2
    assert read(api, second, T0, HOUR)["intervals"] == read(api, first, T0, HOUR)["intervals"]


# The consumer's local vs residual split in its group balance.

GROUPS = "/api/v1/balance-groups/"


def balance(api, ref, start, end, resolution="15min"):
    response = api.get(f"{GROUPS}{ref}/balance", {"start": iso(start), "end": iso(end), "resolution": resolution})
    assert response.status_code == 200, response.json()
    return response


def test_a_scheme_consumers_balance_splits_local_and_residual(api, site, hour):
    body = balance(api, "APT-1", T0, HOUR).json()
    assert [(row["inflow_wh"], row["local_wh"], row["residual_wh"]) for row in body["intervals"]] == [
        (400, 400, 0),
        (301, 301, 0),
        (100, 51, 49),
        (0, 0, 0),
    ]
    assert (body["inflow_wh"], body["local_wh"], body["residual_wh"]) == (801, 752, 49)
    daily = balance(api, "APT-2", T0 - dt.timedelta(hours=1), HOUR + dt.timedelta(days=1), "1d").json()
    assert [(row["local_wh"], row["residual_wh"]) for row in daily["intervals"]] == [(350, 50), (0, 0)]


def test_the_split_balance_equals_the_documented_serializer(api, site, hour):
    start, end = T0 - dt.timedelta(hours=1), HOUR
    expected = group_balance(group=site.apt1, start=start, end=end, resolution="1h")
    split = consumer_allocation(group=site.apt1, start=start, end=end, resolution="1h")
    for interval, row in zip(expected["intervals"], split["intervals"], strict=True):
        interval["local_wh"], interval["residual_wh"] = row["local_wh"], row["residual_wh"]
    expected["local_wh"] = sum(row["local_wh"] for row in split["intervals"])
    expected["residual_wh"] = sum(row["residual_wh"] for row in split["intervals"])
    rendered = JSONRenderer().render(GroupBalanceSplitSerializer(expected).data)
    assert balance(api, "APT-1", start, end, "1h").content == rendered


def test_groups_outside_a_scheme_have_no_split(api, site, hour, make_group):
    make_group("APT-OUT", "consumer")
    for ref in ("APT-OUT", "PV", "GRID"):
        body = balance(api, ref, T0, HOUR).json()
        assert "local_wh" not in body and "local_wh" not in body["intervals"][0]
    before = balance(api, "APT-1", T0 - dt.timedelta(days=1), T0).json()  # before the scheme starts
    assert "local_wh" not in before
