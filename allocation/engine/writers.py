"""Writing a day's allocation changes: new bookings with their key, finalizing, replacing, reversing.

New bookings and lines go through ``transactions.writers.LedgerRows`` (COPY on PostgreSQL); an
allocation booking is one quarter-hour, so it has exactly one line.
"""

import datetime as dt

from django.db import connection

from allocation.models import AllocationBooking, DayFlow, DayValue
from balance_groups.audit import actor_label
from core.db import TableRows, chunks, in_list, in_params, sql_values, uuid4_texts
from core.quarters import QUARTER_SECONDS
from transactions.models import Booking, BookingKind, BookingStatus, LedgerLine
from transactions.writers import LedgerRows

ALLOCATE_ACTOR = "system:allocate"
ALLOCATE_LABEL = actor_label(ALLOCATE_ACTOR)

KEY_COLUMNS = ("booking_id", "tenant_id", "scheme_id", "quarter_start", "source_id", "destination_id")


def apply(*, tenant_id, changes, names: dict, now: dt.datetime) -> None:
    if changes.empty:
        return
    rows = LedgerRows(tenant_id=tenant_id, kind=BookingKind.ALLOCATION.value, actor_label=ALLOCATE_LABEL, now=now)
    gone = changes.delete + changes.dropped
    if gone:
        _delete(gone)
    if changes.reverse:
        _reverse(changes.reverse, rows)
    if changes.finalize:
        _finalize(changes.finalize, now)
    if changes.create:
        keys = TableRows(AllocationBooking, KEY_COLUMNS)
        add, add_key, instant = rows.add, keys.add, rows.instant
        for ((scheme_id, epoch, source, destination), energy, final), booking_id in zip(
            changes.create, uuid4_texts(len(changes.create)), strict=True
        ):
            add(booking_id, None, names[scheme_id], source, destination, epoch, epoch + QUARTER_SECONDS, energy, final)
            add_key((booking_id, tenant_id, scheme_id, instant(epoch), source, destination))
        rows.write()
        keys.write()
    else:
        rows.write()


def _delete(booking_ids: list) -> None:
    """Remove provisional allocation bookings with their keys and lines (final ones never change)."""
    for chunk in chunks(booking_ids):
        LedgerLine.objects.filter(booking_id__in=chunk).delete()
        AllocationBooking.objects.filter(booking_id__in=chunk).delete()
        Booking.objects.filter(pk__in=chunk, status=BookingStatus.PROVISIONAL, kind=BookingKind.ALLOCATION).delete()


def _finalize(booking_ids: list, now: dt.datetime) -> None:
    for chunk in chunks(booking_ids):
        Booking.objects.filter(pk__in=chunk, status=BookingStatus.PROVISIONAL).update(
            status=BookingStatus.FINAL, finalized_at=now, updated_by=ALLOCATE_LABEL, updated_at=now
        )
        LedgerLine.objects.filter(booking_id__in=chunk).update(is_final=True)


def _reverse(booking_ids: list, rows: LedgerRows) -> None:
    """Book a final reversal of each final booking and take its key away (the pair nets to zero)."""
    for chunk in chunks(booking_ids):
        originals = Booking.objects.filter(pk__in=chunk, status=BookingStatus.FINAL).values_list(
            "pk", "source_id", "destination_id", "start", "end", "energy_wh", "name"
        )
        for (pk, source, destination, start, end, energy, name), reversal_id in zip(
            originals, uuid4_texts(len(chunk)), strict=False
        ):
            rows.add(
                reversal_id,
                None,
                f"Reversal of {name}"[:200],
                destination,
                source,
                int(start.timestamp()),
                int(end.timestamp()),
                energy,
                True,
                kind=BookingKind.REVERSAL.value,
                reverses_id=pk,
            )
        AllocationBooking.objects.filter(booking_id__in=chunk).delete()


DAY_FLOWS_SQL = """
INSERT INTO allocation_dayflow (tenant_id, scheme_id, day_start, source_id, destination_id, energy_wh, provisional)
SELECT k.tenant_id, k.scheme_id, %(day)s, k.source_id, k.destination_id, SUM(l.energy_wh),
       SUM(CASE WHEN l.is_final THEN 0 ELSE 1 END)
FROM allocation_allocationbooking k JOIN transactions_ledgerline l ON l.booking_id = k.booking_id
WHERE k.scheme_id IN ({versions}) AND k.quarter_start >= %(day)s AND k.quarter_start < %(end)s
GROUP BY k.tenant_id, k.scheme_id, k.source_id, k.destination_id
"""


def refresh_day_flows(*, version_ids: list, u0: dt.datetime, u1: dt.datetime) -> None:
    """Sum the day's current allocation bookings per version and pair anew (``DayFlow``)."""
    DayFlow.objects.filter(scheme_id__in=version_ids, day_start=u0).delete()
    field = AllocationBooking._meta.get_field("quarter_start")
    params = {
        **in_params("v", sql_values(DayFlow._meta.get_field("scheme"), version_ids)),
        "day": sql_values(field, [u0])[0],
        "end": sql_values(field, [u1])[0],
    }
    with connection.cursor() as cursor:
        cursor.execute(DAY_FLOWS_SQL.format(versions=in_list("v", len(version_ids))), params)


def replace_day_values(*, tenant_id, version_ids: list, u0: dt.datetime, totals: dict) -> None:
    """Store the day's measured sums per version and participant: ``{(version, group): (Wh, provisional)}``."""
    DayValue.objects.filter(scheme_id__in=version_ids, day_start=u0).delete()
    DayValue.objects.bulk_create(
        DayValue(tenant_id=tenant_id, scheme_id=version, day_start=u0, group_id=group, energy_wh=wh, provisional=open_)
        for (version, group), (wh, open_) in totals.items()
    )
