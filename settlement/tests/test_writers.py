"""The PostgreSQL COPY writer of settlement bookings writes exactly the rows of the portable one."""

import datetime as dt

import pytest

from core.quarters import local_day_bounds, to_epoch
from settlement.engine.diff import NewBooking
from settlement.engine.nets import Wanted
from settlement.engine.writers import create_settlement_bookings
from settlement.models import SettlementBooking
from settlement.tests.conftest import at
from transactions.models import Booking, BookingKind, LedgerLine

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

NOW = dt.datetime(2026, 6, 1, 10, 7, 3, 123456, tzinfo=dt.UTC)


def _snapshot(booking_ids, offset):
    """The written rows, booking ids replaced by their position in ``booking_ids`` and revisions
    moved back by ``offset``."""
    position = {booking_id: index for index, booking_id in enumerate(booking_ids)}
    bookings, links, lines = [], [], []
    for row in Booking.objects.filter(pk__in=booking_ids).values():
        bookings.append((position[row.pop("id")], sorted(row.items())))
    for row in SettlementBooking.objects.filter(booking_id__in=booking_ids).values():
        del row["id"]
        row["revision"] -= offset
        links.append((position[row.pop("booking_id")], sorted(row.items())))
    for row in LedgerLine.objects.filter(booking_id__in=booking_ids).values():
        del row["id"]
        lines.append((position[row.pop("booking_id")], row["quarter_start"], sorted(row.items())))
    return sorted(bookings), sorted(links), sorted(lines)


def test_copy_writer_matches_the_portable_writer(tenant, site, rule, monkeypatch):
    version = rule(site["PV"], [(site["HOUSE"], 6000), (site["GRID"], 4000)])
    day_start, day_end = local_day_bounds(dt.date(2026, 1, 15))
    pv, house, grid = site["PV"].pk, site["HOUSE"].pk, site["GRID"].pk
    cases = [
        # (parent, window start, window end, signed amount, final)
        (house, at(10), at(10, 15), 7, True),
        (grid, at(10), at(10, 15), -3, False),
        (house, at(11), at(12), 1001, False),  # 251, 250, 250, 250
        (grid, at(11), at(12), -2, True),  # 1, 1 and two zero quarters left out
        (house, day_start, day_end, 9601, False),  # a whole local day
    ]
    to_create = []
    for revision, (parent, start, end, amount, final) in enumerate(cases):
        want = Wanted(version.pk, pv, parent, start, end, amount, final, to_epoch(start))
        to_create.append(NewBooking(want, amount, revision, final, False))
    codes = {pv: "PV\tA\\B"}  # escaped in COPY text

    def written(writer, offset):
        """The rows ``writer`` adds, under revisions moved by ``offset`` (the key is unique)."""
        before = set(Booking.objects.filter(kind=BookingKind.SETTLEMENT).values_list("pk", flat=True))
        moved = [NewBooking(new.want, new.amount, new.revision + offset, new.final, False) for new in to_create]
        writer(tenant_id=tenant.pk, new=moved, codes=codes, now=NOW)
        new = Booking.objects.filter(kind=BookingKind.SETTLEMENT).exclude(pk__in=before)
        ids = [booking.pk for booking in sorted(new, key=lambda booking: booking.settlement.revision)]
        return _snapshot(ids, offset)

    def portable_writer(**kwargs):
        """The same writer on its portable path (``bulk_create``, as on SQLite)."""
        with monkeypatch.context() as patch:
            patch.setattr("core.db.is_postgres", lambda conn=None: False)
            create_settlement_bookings(**kwargs)

    copied = written(create_settlement_bookings, 0)
    portable = written(portable_writer, 100)
    assert copied == portable
    bookings, links, lines = copied
    assert len(bookings) == len(links) == 5
    assert len(lines) == 1 + 1 + 4 + 2 + 96
    first = dict(bookings[0][1])
    assert first["name"] == "Settlement PV\tA\\B 2026-01-15 10:00Z"
    assert (first["status"], first["finalized_at"], first["created_at"]) == ("final", NOW, NOW)
    assert dict(bookings[2][1])["finalized_at"] is None
