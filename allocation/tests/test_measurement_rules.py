"""The integer window of ``bookable_epochs`` decides exactly as ``bookable_error`` does."""

import datetime as dt

import pytest

from allocation.measurements import bookable_epochs, bookable_error
from balance_groups.models import BalanceGroup
from core.quarters import from_epoch, to_epoch
from core.testing import T0

US = dt.timedelta(microseconds=1)
Q = dt.timedelta(minutes=15)


@pytest.mark.parametrize(
    ("valid_from", "valid_until", "closed_until"),
    [
        (T0, None, None),
        (T0, T0 + 4 * Q, None),
        (T0 + US, T0 + 4 * Q - US, None),  # stored off the second (SQLite does not refuse it)
        (T0 - US, T0 + 4 * Q + US, T0 + Q + US),
        (T0, T0 + 8 * Q, T0 + 2 * Q),
        (T0, T0 + Q, T0 + 3 * Q),  # closed past its validity: nothing can be stored
        (dt.datetime(1, 1, 1, tzinfo=dt.UTC), dt.datetime(9999, 12, 31, 23, 45, tzinfo=dt.UTC), None),
    ],
)
def test_the_window_matches_the_rule_at_every_quarter_hour(valid_from, valid_until, closed_until):
    group = BalanceGroup(code="G", valid_from=valid_from, valid_until=valid_until, closed_until=closed_until)
    first, last = bookable_epochs(group)
    for step in range(-4, 12):
        epoch = to_epoch(T0 + step * Q)
        assert (first <= epoch <= last) == (bookable_error(group, from_epoch(epoch)) is None), step
