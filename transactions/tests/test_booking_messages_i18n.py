"""A booking's refusal speaks the language active when it is raised, with instants in local time."""

import datetime as dt

import pytest
from django.utils import translation

from balance_groups.services import group_close
from core.errors import PeriodClosed
from transactions.services import check_bookable

UTC = dt.UTC


def test_the_language_is_the_one_active_at_raise_time(make_group, operator):
    group = make_group("PV", "source", valid_from=dt.datetime(2026, 1, 1, tzinfo=UTC))
    other = make_group("HOUSE", "balance", valid_from=dt.datetime(2026, 1, 1, tzinfo=UTC))
    group_close(group=group, actor=operator, until=dt.datetime(2026, 3, 1, tzinfo=UTC))
    group.refresh_from_db()
    start, end = dt.datetime(2026, 2, 1, 12, tzinfo=UTC), dt.datetime(2026, 2, 1, 13, tzinfo=UTC)
    with pytest.raises(PeriodClosed) as english:
        check_bookable(source=group, destination=other, start=start, end=end)
    with translation.override("de"), pytest.raises(PeriodClosed) as german:
        check_bookable(source=group, destination=other, start=start, end=end)
    assert english.value.detail == (
        "Group PV is closed until 2026-03-01 01:00 (Europe/Berlin); "
        "the booking starts 2026-02-01 13:00 (Europe/Berlin)."
    )
    assert german.value.detail == (
        "Der Bilanzkreis PV ist bis 01.03.2026 01:00 (Europe/Berlin) abgeschlossen; "
        "die Buchung beginnt am 01.02.2026 13:00 (Europe/Berlin)."
    )
