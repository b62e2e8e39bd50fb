"""Ledger invariants for ``manage.py check_ledger`` (registered with ``core.integrity``).

Each check is ``(tenant_ids) -> list[Violation]``, reads with SQL aggregates and never loads the
ledger into memory.
"""

from django.db.models import Count, F, Q, Sum

from core.db import epoch_sql
from core.integrity import MAX_REPORTED, Violation, first_rows, tenant_sql
from core.quarters import QUARTER_SECONDS
from transactions.models import Booking, BookingStatus, LedgerLine


def _lines(tenant_ids):
    lines = LedgerLine.objects.all()
    return lines.filter(tenant_id__in=tenant_ids) if tenant_ids is not None else lines


def _bookings(tenant_ids):
    bookings = Booking.objects.all()
    return bookings.filter(tenant_id__in=tenant_ids) if tenant_ids is not None else bookings


def check_zero_sum(tenant_ids=None) -> list[Violation]:
    """Per tenant and quarter-hour the nets of all the tenant's groups sum to zero.

    Inflows are counted by the destination group's tenant and outflows by the source group's,
    so a line that crosses tenants shows up here.
    """
    lines = LedgerLine.objects.all()
    if tenant_ids is not None:
        lines = lines.filter(Q(source__tenant_id__in=tenant_ids) | Q(destination__tenant_id__in=tenant_ids))
    totals: dict = {}
    inflows = lines.values(group_tenant=F("destination__tenant_id"), quarter=F("quarter_start")).annotate(
        e=Sum("energy_wh")
    )
    outflows = lines.values(group_tenant=F("source__tenant_id"), quarter=F("quarter_start")).annotate(
        e=Sum("energy_wh")
    )
    # Only the (tenant, quarter) pairs that do not cancel are kept, so memory stays small.
    for row in inflows.iterator(chunk_size=5000):
        key = (row["group_tenant"], row["quarter"])
        totals[key] = totals.get(key, 0) + row["e"]
    for row in outflows.iterator(chunk_size=5000):
        key = (row["group_tenant"], row["quarter"])
        remaining = totals.get(key, 0) - row["e"]
        if remaining:
            totals[key] = remaining
        else:
            totals.pop(key, None)
    return [
        Violation("zero_sum", f"tenant {tenant} quarter {quarter.isoformat()}: nets sum to {net} Wh, not 0")
        for (tenant, quarter), net in sorted(totals.items(), key=lambda item: (item[0][0], item[0][1]))
        if net
    ][:MAX_REPORTED]


def _suspect_bookings(tenant_ids) -> list:
    """The bookings (at most ``MAX_REPORTED``) some line of which, or whose sum, disagrees with them.

    Three statements that each read the tables once, without ordering by booking id (a booking id
    is a random UUID: a walk in its order reads the tables in random order): lines against their
    booking, line by line (a booking of one quarter-hour has at most one line, which must carry all
    its energy); the sums of the longer bookings, the only ones with several lines; bookings
    without lines.
    """
    bookings, params = tenant_sql("b", tenant_ids)
    end_column = 'b."end"'
    duration = f"{epoch_sql(end_column)} - {epoch_sql('b.start')}"
    final = BookingStatus.FINAL.value
    statements = [
        f"""SELECT l.booking_id FROM transactions_ledgerline l JOIN transactions_booking b ON b.id = l.booking_id
            WHERE (l.quarter_start < b.start OR l.quarter_start >= b."end" OR l.tenant_id <> b.tenant_id
                   OR l.source_id <> b.source_id OR l.destination_id <> b.destination_id
                   OR (l.is_final AND b.status <> '{final}') OR (NOT l.is_final AND b.status = '{final}')
                   OR ({duration} <= {QUARTER_SECONDS} AND l.energy_wh <> b.energy_wh)) {bookings}""",  # noqa: S608
        f"""SELECT b.id FROM transactions_booking b JOIN transactions_ledgerline l ON l.booking_id = b.id
            WHERE {duration} > {QUARTER_SECONDS} {bookings}
            GROUP BY b.id HAVING SUM(l.energy_wh) <> MIN(b.energy_wh)""",  # noqa: S608
        f"""SELECT b.id FROM transactions_booking b
            WHERE NOT EXISTS (SELECT 1 FROM transactions_ledgerline l WHERE l.booking_id = b.id) {bookings}""",  # noqa: S608
    ]
    suspects: dict = {}
    for sql in statements:
        for (booking_id,) in first_rows(sql, params):
            suspects.setdefault(booking_id, None)
    return list(suspects)[:MAX_REPORTED]


def check_lines_against_bookings(tenant_ids=None) -> list[Violation]:
    """Every booking's lines add up exactly to its energy and lie within its period; their copied
    columns agree with the booking; a line is final exactly when its booking is.

    The suspects are found by reading the ledger once per statement; what is wrong with them is
    then told by one aggregate over their lines only.
    """
    suspects = _suspect_bookings(tenant_ids)
    if not suspects:
        return []
    provisional, final = BookingStatus.PROVISIONAL, BookingStatus.FINAL
    disagreeing = (
        Booking.objects.filter(pk__in=suspects)
        .annotate(
            line_sum=Sum("lines__energy_wh"),
            outside=Count(
                "lines", filter=Q(lines__quarter_start__lt=F("start")) | Q(lines__quarter_start__gte=F("end"))
            ),
            copies_off=Count(
                "lines",
                filter=~Q(lines__tenant_id=F("tenant_id"))
                | ~Q(lines__source_id=F("source_id"))
                | ~Q(lines__destination_id=F("destination_id")),
            ),
            status_off=Count(
                "lines",
                filter=Q(lines__is_final=True, status=provisional) | Q(lines__is_final=False, status=final),
            ),
        )
        .filter(
            Q(line_sum__isnull=True)
            | ~Q(line_sum=F("energy_wh"))
            | Q(outside__gt=0)
            | Q(copies_off__gt=0)
            | Q(status_off__gt=0)
        )
        .values("id", "energy_wh", "line_sum", "outside", "copies_off", "status_off")[:MAX_REPORTED]
    )
    violations = []
    for row in disagreeing:
        booking = row["id"]
        if row["line_sum"] != row["energy_wh"] or row["outside"]:
            violations.append(
                Violation(
                    "lines_sum",
                    f"booking {booking}: lines sum to {row['line_sum'] or 0} Wh, booking says {row['energy_wh']} Wh"
                    + (f", {row['outside']} line(s) outside its period" if row["outside"] else ""),
                )
            )
        if row["copies_off"]:
            violations.append(
                Violation("line_copy", f"booking {booking}: {row['copies_off']} line(s) disagree with it")
            )
        if row["status_off"]:
            violations.append(
                Violation("status", f"booking {booking}: {row['status_off']} line(s) differ from its status")
            )
    return violations[:MAX_REPORTED]


def check_tenancy(tenant_ids=None) -> list[Violation]:
    """A line's groups belong to the line's tenant."""
    bad = (
        _lines(tenant_ids)
        .filter(~Q(source__tenant_id=F("tenant_id")) | ~Q(destination__tenant_id=F("tenant_id")))
        .values_list("id")
    )
    return [Violation("tenancy", f"line {line} connects groups of another tenant") for (line,) in first_rows(bad)]


def check_alignment(tenant_ids=None) -> list[Violation]:
    """Quarter starts are aligned (PostgreSQL enforces it with CHECKs; SQLite relies on this)."""
    bad = _lines(tenant_ids).exclude(quarter_start__minute__in=(0, 15, 30, 45), quarter_start__second=0)
    return [
        Violation("alignment", f"line {line} starts at {quarter.isoformat()}, not on a quarter-hour")
        for line, quarter in first_rows(bad.values_list("id", "quarter_start"))
    ]


LEDGER_CHECKS = [check_zero_sum, check_lines_against_bookings, check_tenancy, check_alignment]
