"""The PostgreSQL COPY writer of settlement bookings writes exactly the rows of the portable one."""

import datetime as dt

import pytest

from bkm.quarters import local_day_bounds
from settlement.models import SettlementBooking
from settlement.services import _create_copy, _create_rows, _epoch, _Wanted
from settlement.tests.conftest import at
from transactions.models import Booking, BookingKind, BookingStatus, LedgerLine

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


def test_copy_writer_matches_the_portable_writer(tenant, site, rule):
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
        want = _Wanted(version.pk, pv, parent, start, end, amount, final, _epoch(start))
        status = BookingStatus.FINAL if final else BookingStatus.PROVISIONAL
        to_create.append((want, amount, revision, status, False))
    codes = {pv: "PV\tA\\B"}  # escaped in COPY text

    def written(writer, offset):
        """The rows ``writer`` adds, under revisions moved by ``offset`` (the key is unique)."""
        before = set(Booking.objects.filter(kind=BookingKind.SETTLEMENT).values_list("pk", flat=True))
        moved = [(want, amount, revision + offset, *rest) for want, amount, revision, *rest in to_create]
        writer(tenant_id=tenant.pk, to_create=moved, codes=codes, now=NOW)
        new = Booking.objects.filter(kind=BookingKind.SETTLEMENT).exclude(pk__in=before)
        ids = [booking.pk for booking in sorted(new, key=lambda booking: booking.settlement.revision)]
        return _snapshot(ids, offset)

    copied = written(_create_copy, 0)
    portable = written(_create_rows, 100)
    assert copied == portable
    bookings, links, lines = copied
    assert len(bookings) == len(links) == 5
    assert len(lines) == 1 + 1 + 4 + 2 + 96
    first = dict(bookings[0][1])
    assert first["name"] == "Settlement PV\tA\\B 2026-01-15 10:00Z"
    assert (first["status"], first["finalized_at"], first["created_at"]) == ("final", NOW, NOW)
    assert dict(bookings[2][1])["finalized_at"] is None
