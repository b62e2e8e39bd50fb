"""Instants and helpers the test suites share (pure: no app, no database).

The factories (``balance_groups.factories``) and the fixtures (the root ``conftest.py``) are the
other shared pieces; each suite keeps only what is its own.
"""

import datetime as dt

from core.rest.fields import format_instant

UTC = dt.UTC
HOUR = dt.timedelta(hours=1)
T0 = dt.datetime(2026, 1, 1, tzinfo=UTC)  # the factories' groups are valid from here
MONDAY = dt.datetime(2026, 3, 2, tzinfo=UTC)  # a Monday far from DST changes (API and access suites)
SUMMER_MONDAY = dt.datetime(2025, 6, 2, tzinfo=UTC)  # a summer Monday (immutability and nothing-lost suites)


def at(hours: float) -> dt.datetime:
    """``hours`` after T0."""
    return T0 + dt.timedelta(hours=hours)


def iso(instant: dt.datetime) -> str:
    """An instant as the API writes it (UTC, ``Z``)."""
    return format_instant(instant)
