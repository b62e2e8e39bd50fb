import datetime as dt

import pytest

from core.errors import InvalidInput, InvalidTimeAlignment
from core.quarters import buckets, local_day_bounds, next_quarter_after, parse_instant, quarter_count
from core.splitting import split_by_shares, split_energy

UTC = dt.UTC


@pytest.mark.parametrize(
    ("day", "quarters"),
    [(dt.date(2026, 3, 29), 92), (dt.date(2026, 3, 30), 96), (dt.date(2026, 10, 25), 100)],
)
def test_local_days_have_92_96_or_100_quarter_hours(day, quarters):
    start, end = local_day_bounds(day)
    assert quarter_count(start, end) == quarters
    assert start.utcoffset() == dt.timedelta(0)


def test_spring_dst_day_starts_at_local_midnight_in_utc():
    start, end = local_day_bounds(dt.date(2026, 3, 29))
    assert start == dt.datetime(2026, 3, 28, 23, 0, tzinfo=UTC)
    assert end == dt.datetime(2026, 3, 29, 22, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("total", "parts", "expected"),
    [(1001, 4, [251, 250, 250, 250]), (1000, 4, [250, 250, 250, 250]), (3, 4, [1, 1, 1, 0]), (7, 1, [7])],
)
def test_split_energy_is_exact_and_deterministic(total, parts, expected):
    assert split_energy(total, parts) == expected
    assert sum(split_energy(total, parts)) == total


def test_split_energy_never_differs_by_more_than_one():
    for total in range(0, 500, 7):
        for parts in (1, 3, 4, 92, 96, 100):
            result = split_energy(total, parts)
            assert sum(result) == total
            assert max(result) - min(result) <= 1


@pytest.mark.parametrize(
    ("total", "shares", "expected"),
    [
        (1001, [6000, 4000], [601, 400]),
        (1, [6000, 4000], [1, 0]),
        (-1001, [6000, 4000], [-601, -400]),
        (10, [3333, 3333, 3334], [3, 3, 4]),
        (5, [5000, 5000], [3, 2]),
    ],
)
def test_split_by_shares_sums_to_total(total, shares, expected):
    assert split_by_shares(total, shares) == expected


def test_split_by_shares_rejects_shares_not_summing_to_10000():
    with pytest.raises(ValueError, match="10000"):
        split_by_shares(100, [5000, 4000])


def test_parse_instant_accepts_offsets_and_returns_utc():
    assert parse_instant("2026-03-29T00:00:00+01:00", "start") == dt.datetime(2026, 3, 28, 23, 0, tzinfo=UTC)
    assert parse_instant("2026-03-29T00:15:00Z", "start") == dt.datetime(2026, 3, 29, 0, 15, tzinfo=UTC)


def test_naive_instant_is_rejected_not_guessed():
    with pytest.raises(InvalidInput) as error:
        parse_instant("2026-03-29T00:00:00", "start")
    assert error.value.code == "VALIDATION_ERROR"
    assert "offset" in error.value.errors["start"][0]


@pytest.mark.parametrize("value", ["2026-03-29T00:07:00Z", "2026-03-29T00:15:01Z", "2026-03-29T00:15:00.5Z"])
def test_misaligned_instant_is_rejected_not_rounded(value):
    with pytest.raises(InvalidTimeAlignment) as error:
        parse_instant(value, "end")
    assert error.value.code == "INVALID_TIME_ALIGNMENT"


def test_offset_that_is_not_a_whole_quarter_hour_is_checked_in_utc():
    # 10:00+05:45 is 04:15Z: aligned. 10:10+05:45 is 04:25Z: not.
    assert parse_instant("2026-01-01T10:00:00+05:45", "start").minute == 15
    with pytest.raises(InvalidTimeAlignment):
        parse_instant("2026-01-01T10:10:00+05:45", "start")


@pytest.mark.parametrize("value", ["yesterday", "", "2026-13-01T00:00:00Z", 12, None])
def test_garbage_instants_are_validation_errors(value):
    with pytest.raises(InvalidInput):
        parse_instant(value, "start")


def test_next_quarter_after_is_strictly_after():
    assert next_quarter_after(dt.datetime(2026, 1, 1, 10, 0, tzinfo=UTC)) == dt.datetime(2026, 1, 1, 10, 15, tzinfo=UTC)
    assert next_quarter_after(dt.datetime(2026, 1, 1, 10, 14, 59, tzinfo=UTC)) == dt.datetime(
        2026, 1, 1, 10, 15, tzinfo=UTC
    )


def test_daily_buckets_follow_local_days_across_dst():
    start, _ = local_day_bounds(dt.date(2026, 3, 28))
    _, end = local_day_bounds(dt.date(2026, 3, 30))
    days = list(buckets(start, end, "1d"))
    assert [quarter_count(a, b) for a, b in days] == [96, 92, 96]


def test_hourly_buckets_are_clipped_to_the_window():
    start = dt.datetime(2026, 1, 1, 10, 15, tzinfo=UTC)
    end = dt.datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert [quarter_count(a, b) for a, b in buckets(start, end, "1h")] == [3, 4]


def test_unknown_resolution_is_a_validation_error():
    with pytest.raises(InvalidInput):
        list(buckets(dt.datetime(2026, 1, 1, tzinfo=UTC), dt.datetime(2026, 1, 2, tzinfo=UTC), "2h"))


def test_instant_beyond_the_supported_range_is_a_validation_error():
    with pytest.raises(InvalidInput):
        parse_instant("9999-12-31T23:45:00-01:00", "end")
