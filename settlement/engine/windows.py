"""Units of work (local days) and the rule windows inside them.

Rule windows: 15min on the quarter-hour grid, 1h on the UTC hour grid, 1d on local days; the rule
version in force at a window's start applies to the whole window; windows never cross a local
midnight (the unit boundary).
"""

import datetime as dt

from core.quarters import QUARTER, local_date, local_day_bounds
from settlement.models import SettlementInterval, SettlementRule

HOUR = dt.timedelta(hours=1)


def unit_bounds(start: dt.datetime, end: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
    """The local days (UTC bounds) that cover ``[start, end)``."""
    return units_of([(start, end)])


def units_of(windows) -> list[tuple[dt.datetime, dt.datetime]]:
    """The local days (UTC bounds) that cover any of the ``[start, end)`` windows, each once, in order;
    the days between two windows are not among them."""
    days = set()
    for start, end in windows:
        first, last = local_date(start), local_date(end - QUARTER)
        days.add(first)
        while last > first:
            days.add(last)
            last -= dt.timedelta(days=1)
    return [local_day_bounds(day) for day in sorted(days)]


def unit_of(instant: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    return local_day_bounds(local_date(instant))


def _grid_end(interval: str, instant: dt.datetime) -> dt.datetime:
    if interval == SettlementInterval.QUARTER_HOUR:
        return instant + QUARTER
    if interval == SettlementInterval.HOUR:
        return instant.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0) + HOUR
    return local_day_bounds(local_date(instant))[1]


def _version_at(versions: list[SettlementRule], instant: dt.datetime) -> SettlementRule | None:
    for version in versions:
        if version.effective_from <= instant and (version.effective_until is None or instant < version.effective_until):
            return version
    return None


def rule_windows(versions: list[SettlementRule], u0: dt.datetime, u1: dt.datetime):
    """``(version, window_start, window_end)`` for a group's versions (sorted) inside one unit."""
    windows = []
    instant = u0
    while instant < u1:
        version = _version_at(versions, instant)
        if version is None:
            later = [v.effective_from for v in versions if v.effective_from > instant]
            if not later:
                break
            instant = min(later)
            continue
        end = min(_grid_end(version.interval, instant), u1)
        windows.append((version, instant, end))
        instant = end
    return windows
