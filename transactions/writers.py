"""New bookings and their quarter-hour lines, written in one go: the one writer behind bulk
ingestion and settlement (``core.db.TableRows``: COPY on PostgreSQL, ``bulk_create`` elsewhere).

Lines come from ``core.splitting.quarter_parts``, the split of every booking.
"""

import datetime as dt

from core.db import TableRows
from core.quarters import QUARTER_SECONDS, from_epoch
from core.splitting import quarter_parts
from transactions.models import Booking, BookingStatus, LedgerLine

BOOKING_COLUMNS = (
    "id",
    "tenant_id",
    "external_id",
    "name",
    "source_id",
    "destination_id",
    "start",
    "end",
    "energy_wh",
    "status",
    "kind",
    "reverses_id",
    "created_at",
    "created_by",
    "updated_at",
    "updated_by",
    "finalized_at",
)
LINE_COLUMNS = ("booking_id", "tenant_id", "source_id", "destination_id", "quarter_start", "energy_wh", "is_final")

FINAL, PROVISIONAL = BookingStatus.FINAL.value, BookingStatus.PROVISIONAL.value


class LedgerRows:
    """Bookings added with ``add`` (and their lines) are written by ``write``."""

    def __init__(self, *, tenant_id, kind: str, actor_label: str, now: dt.datetime):
        self.tenant_id, self.kind, self.label, self.now = tenant_id, kind, actor_label, now
        self.bookings = TableRows(Booking, BOOKING_COLUMNS)
        self.lines = TableRows(LedgerLine, LINE_COLUMNS)
        self._instants: dict[int, dt.datetime] = {}  # one object per instant: formatted once on COPY

    def instant(self, epoch: int) -> dt.datetime:
        value = self._instants.get(epoch)
        if value is None:
            value = self._instants[epoch] = from_epoch(epoch)
        return value

    def add(
        self,
        booking_id,
        external_id,
        name,
        source_id,
        destination_id,
        start_epoch,
        end_epoch,
        energy_wh,
        final,
        *,
        kind=None,
        reverses_id=None,
    ):
        tenant_id, now, label, instant = self.tenant_id, self.now, self.label, self.instant
        status, finalized_at = (FINAL, now) if final else (PROVISIONAL, None)
        start, end = instant(start_epoch), instant(end_epoch)
        # The columns of BOOKING_COLUMNS, in order.
        row = (booking_id, tenant_id, external_id, name, source_id, destination_id, start, end, energy_wh, status)
        self.bookings.add((*row, kind or self.kind, reverses_id, now, label, now, label, finalized_at))
        if end_epoch - start_epoch == QUARTER_SECONDS:  # one quarter-hour (allocation): its one line
            self.lines.add((booking_id, tenant_id, source_id, destination_id, start, energy_wh, final))
            return
        add_line = self.lines.add
        for epoch, part in quarter_parts(start_epoch, end_epoch, energy_wh):
            add_line((booking_id, tenant_id, source_id, destination_id, instant(epoch), part, final))

    def write(self) -> None:
        self.bookings.write()
        self.lines.write()
