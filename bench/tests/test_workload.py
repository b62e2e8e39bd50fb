import datetime as dt
import json
from collections import Counter

import pytest

from bench.workload import DEFAULT_START, PRESETS, batch_body, build_workload

QUARTER = dt.timedelta(minutes=15)


def test_same_seed_same_workload():
    first, second = build_workload(groups=40, days=1, seed=7), build_workload(groups=40, days=1, seed=7)
    assert first.groups == second.groups
    assert first.rules == second.rules
    assert list(first.values()) == list(second.values())


def test_other_seed_other_values():
    first, second = build_workload(groups=40, days=1, seed=7), build_workload(groups=40, days=1, seed=8)
    assert [item["energy_wh"] for item in first.values()] != [item["energy_wh"] for item in second.values()]


def test_full_default_shape():
    workload = build_workload()
    kinds = Counter(group.kind for group in workload.groups)
    assert len(workload.groups) == 1000
    assert kinds["balance"] == 41  # SITE and 40 areas
    assert kinds["source"] + kinds["consumer"] == 959
    assert workload.quarters == 31 * 96 == 2976
    assert workload.value_count == 957 * 2976
    assert 2_800_000 < workload.value_count < 3_100_000
    assert workload.start == DEFAULT_START
    assert workload.end - workload.start == dt.timedelta(days=31)


def test_three_levels_and_rules():
    workload = build_workload(groups=100, days=1)
    levels = {group.code: group.level for group in workload.groups}
    kinds = {group.code: group.kind for group in workload.groups}
    ruled = {rule.group for rule in workload.rules}
    assert "SITE" not in ruled and levels["SITE"] == 1
    assert ruled == set(levels) - {"SITE"}
    for rule in workload.rules:
        assert sum(share for _, share in rule.targets) == 10000
        assert all(kinds[parent] == "balance" for parent, _ in rule.targets)
        assert all(levels[parent] == levels[rule.group] - 1 for parent, _ in rule.targets)
    intervals = Counter(rule.interval for rule in workload.rules)
    assert set(intervals) == {"15min", "1h", "1d"}
    splits = [rule for rule in workload.rules if len(rule.targets) == 2]
    assert splits and all([share for _, share in rule.targets] == [6000, 4000] for rule in splits)
    assert {group.level for group in workload.groups} == {1, 2, 3}


def test_values_are_api_items_one_per_leaf_and_quarter():
    workload = build_workload(groups=12, days=2)
    items = list(workload.values())
    assert len(items) == workload.value_count == len(workload.leaves) * 192
    assert len({item["external_id"] for item in items}) == len(items)
    codes = {group.code for group in workload.groups}
    for item in items:
        start = dt.datetime.fromisoformat(item["start"])
        end = dt.datetime.fromisoformat(item["end"])
        assert start.utcoffset() == dt.timedelta(0)
        assert end - start == QUARTER
        assert start.minute % 15 == 0 and start.second == 0
        assert workload.start <= start < workload.end
        assert isinstance(item["energy_wh"], int) and item["energy_wh"] >= 1
        assert item["source"] in codes and item["destination"] in codes
        assert item["source"] != item["destination"]
        assert "GRID-IMPORT" in (item["source"], item["destination"]) or item["destination"] == "GRID-EXPORT"
    # Every day but the last is final.
    statuses = Counter((item["start"] < "2026-01-01T23:00:00Z", item["status"]) for item in items)
    assert set(statuses) == {(True, "final"), (False, "provisional")}


def test_batches_cover_every_value_once():
    workload = build_workload(groups=12, days=1)
    batches = list(workload.batches(100))
    assert [len(batch) for batch in batches[:-1]] == [100] * (len(batches) - 1)
    assert 0 < len(batches[-1]) <= 100
    assert [item for batch in batches for item in batch] == list(workload.values())


def test_batch_body_is_the_bulk_request_shape():
    items = list(build_workload(groups=12, days=1).values())[:3]
    assert json.loads(batch_body(items)) == {"bookings": items}


def test_presets_and_limits():
    assert PRESETS["full"] == (1000, 31)
    assert PRESETS["tiny"][0] * PRESETS["tiny"][1] < PRESETS["quick"][0] * PRESETS["quick"][1]
    with pytest.raises(ValueError):
        build_workload(groups=5)
    with pytest.raises(ValueError):
        build_workload(groups=12, days=0)
