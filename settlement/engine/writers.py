"""Writing a level's changes: new settlement bookings (booking, key and lines), finalizing, deleting.

New bookings and lines go through ``transactions.writers.LedgerRows``, the writer bulk ingestion
uses too (COPY on PostgreSQL, ``bulk_create`` elsewhere; the split of every booking).
"""

import datetime as dt

from balance_groups.audit import actor_label
from core.db import TableRows, chunks, uuid4_texts
from core.quarters import to_epoch
from settlement.engine.diff import NewBooking
from settlement.models import SettlementBooking
from transactions.models import Booking, BookingKind, BookingStatus, LedgerLine
from transactions.writers import LedgerRows

SETTLE_ACTOR = "system:settle"
SETTLE_LABEL = actor_label(SETTLE_ACTOR)

LINK_COLUMNS = ("booking_id", "rule_id", "tenant_id", "child_id", "parent_id", "window_start", "window_end", "revision")


def booking_name(code: str, window_start: dt.datetime) -> str:
    return f"Settlement {code} {window_start:%Y-%m-%d %H:%M}Z"[:200]


def create_settlement_bookings(*, tenant_id, new: list[NewBooking], codes: dict, now: dt.datetime) -> None:
    """Write a booking, its quarter-hour lines and its settlement key for every new settlement."""
    rows = LedgerRows(tenant_id=tenant_id, kind=BookingKind.SETTLEMENT.value, actor_label=SETTLE_LABEL, now=now)
    links = TableRows(SettlementBooking, LINK_COLUMNS)
    names: dict = {}  # (child, window start epoch) -> booking name (formatting the stamp is not free)
    for item, booking_id in zip(new, uuid4_texts(len(new)), strict=True):
        want = item.want
        source, destination = (want.child_id, want.parent_id) if item.amount > 0 else (want.parent_id, want.child_id)
        start_epoch, end_epoch = want.start_epoch, to_epoch(want.window_end)
        name = names.get((want.child_id, start_epoch))
        if name is None:
            name = names[(want.child_id, start_epoch)] = booking_name(codes.get(want.child_id, ""), want.window_start)
        rows.add(booking_id, None, name, source, destination, start_epoch, end_epoch, abs(item.amount), item.final)
        start, end = rows.instant(start_epoch), rows.instant(end_epoch)
        links.add((booking_id, want.rule_id, tenant_id, want.child_id, want.parent_id, start, end, item.revision))
    rows.write()
    links.write()


def finalize_settlement_bookings(booking_ids: list, now: dt.datetime) -> None:
    for chunk in chunks(booking_ids):
        Booking.objects.filter(pk__in=chunk, status=BookingStatus.PROVISIONAL).update(
            status=BookingStatus.FINAL, finalized_at=now, updated_by=SETTLE_LABEL, updated_at=now
        )
        LedgerLine.objects.filter(booking_id__in=chunk).update(is_final=True)


def delete_settlement_bookings(booking_ids: list) -> None:
    """Remove provisional settlement bookings with their keys and lines (final ones never change)."""
    for chunk in chunks(booking_ids):
        LedgerLine.objects.filter(booking_id__in=chunk).delete()
        SettlementBooking.objects.filter(booking_id__in=chunk).delete()
        Booking.objects.filter(pk__in=chunk, status=BookingStatus.PROVISIONAL, kind=BookingKind.SETTLEMENT).delete()
