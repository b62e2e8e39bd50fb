import datetime as dt
import json
import re
from collections import Counter, defaultdict

import pytest

from bench.allocation_workload import PRESETS, batch_body, build_allocation_workload
from bench.workload import DEFAULT_START, LOCAL_OFFSET_HOURS

ITEM_KEYS = {"group", "start", "energy_wh", "quality", "status"}


def local_hour(item: dict) -> float:
    start = dt.datetime.fromisoformat(item["start"])
    return (start.hour + LOCAL_OFFSET_HOURS) % 24 + start.minute / 60


def by_code(workload) -> dict:
    """``{participant code: [items in time order]}``."""
    code_of = {p.metering_point: p.code for p in workload.participants}
    series = defaultdict(list)
    for item in workload.values():
        series[code_of[item["group"]]].append(item)
    return series


def test_same_seed_same_measurements_other_seed_others():
    first = list(build_allocation_workload(consumers=8, days=1, seed=5).values())
    assert first == list(build_allocation_workload(consumers=8, days=1, seed=5).values())
    other = list(build_allocation_workload(consumers=8, days=1, seed=6).values())
    assert [item["energy_wh"] for item in first] != [item["energy_wh"] for item in other]


def test_full_site_shape():
    workload = build_allocation_workload()
    assert [(p.code, p.kind) for p in workload.sources] == [("PV", "source"), ("BATTERY", "source")]
    assert len(workload.consumers) == 200
    assert workload.quarters == 31 * 96
    assert workload.value_count == 202 * 2976 == 601_152
    assert (workload.start, workload.end - workload.start) == (DEFAULT_START, dt.timedelta(days=31))
    profiles = Counter(p.profile for p in workload.consumers)
    assert set(profiles) == {"apartment", "heat_pump", "wallbox", "common", "shop"}
    assert len({p.scale for p in workload.consumers}) > 100
    assert sum(workload.shares()) == 10000
    assert PRESETS["full"] == (200, 31)


def test_items_are_api_measurements_one_per_participant_and_quarter():
    workload = build_allocation_workload(consumers=5, days=2)
    items = list(workload.values())
    assert len(items) == workload.value_count == 7 * 192
    meters = [p.metering_point for p in workload.participants]
    assert len(set(meters)) == 7 and all(re.fullmatch(r"[A-Za-z0-9]{1,64}", m) for m in meters)
    assert Counter(item["group"] for item in items) == dict.fromkeys(meters, 192)
    assert len({(item["group"], item["start"]) for item in items}) == len(items)
    for item in items:
        assert set(item) == ITEM_KEYS
        start = dt.datetime.fromisoformat(item["start"])
        assert start.utcoffset() == dt.timedelta(0) and start.minute % 15 == 0
        assert workload.start <= start < workload.end
        assert isinstance(item["energy_wh"], int) and item["energy_wh"] >= 0
        assert item["quality"] == "measured"
        assert item["status"] == ("final" if start < workload.end - dt.timedelta(days=1) else "provisional")


def test_pv_is_zero_at_night_and_the_battery_works_in_the_evening():
    workload = build_allocation_workload(consumers=10, days=3)
    series = by_code(workload)
    pv, battery = series["PV"], series["BATTERY"]
    assert all(item["energy_wh"] == 0 for item in pv if not 8 <= local_hour(item) < 16)
    assert sum(1 for item in pv if item["energy_wh"] == 0) > len(pv) / 2
    assert max(item["energy_wh"] for item in pv) > 0
    assert all(item["energy_wh"] == 0 for item in battery if not 17 <= local_hour(item) < 23)
    assert all(item["energy_wh"] > 0 for item in battery if 17 <= local_hour(item) < 23)
    # On a clear noon the PV covers the whole site for at least one quarter-hour of the three days.
    consumers = [series[p.code] for p in workload.consumers]
    totals = [sum(s[q]["energy_wh"] for s in consumers) for q in range(workload.quarters)]
    assert any(pv[q]["energy_wh"] > totals[q] for q in range(workload.quarters))


def test_consumers_differ():
    workload = build_allocation_workload(consumers=60, days=2)
    series = by_code(workload)
    profiles = {p.code: p.profile for p in workload.consumers}
    wallboxes = [code for code, profile in profiles.items() if profile == "wallbox"]
    assert wallboxes
    for code in wallboxes:  # a wallbox draws nothing most of the day
        assert sum(1 for item in series[code] if item["energy_wh"] == 0) > workload.quarters / 2
    patterns = {tuple(item["energy_wh"] for item in series[code]) for code in profiles}
    assert len(patterns) == len(profiles)


def test_shares_sum_to_full_for_any_count():
    assert build_allocation_workload(consumers=7, days=1).shares() == [1429] * 4 + [1428] * 3
    for count in (2, 3, 7, 200):
        shares = build_allocation_workload(consumers=count, days=1).shares()
        assert len(shares) == count and sum(shares) == 10000 and max(shares) - min(shares) <= 1


def test_batches_cover_every_value_once_and_are_the_bulk_body():
    workload = build_allocation_workload(consumers=4, days=1)
    batches = list(workload.batches(250))
    assert [len(batch) for batch in batches] == [250, 250, 76]
    assert [item for batch in batches for item in batch] == list(workload.values())
    assert json.loads(batch_body(batches[0][:2])) == {"measurements": batches[0][:2]}


def test_limits():
    with pytest.raises(ValueError):
        build_allocation_workload(consumers=1)
    with pytest.raises(ValueError):
        build_allocation_workload(consumers=5, days=0)
