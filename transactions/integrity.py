"""Ledger invariants for ``manage.py check_ledger`` (registered with ``core.integrity``).

Each check is ``(tenant_ids) -> list[Violation]``, reads with SQL aggregates and never loads the
ledger into memory.
"""

from django.db.models import Count, F, Q, Sum

from core.integrity import MAX_REPORTED, Violation
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


def check_lines_against_bookings(tenant_ids=None) -> list[Violation]:
    """Every booking's lines add up exactly to its energy and lie within its period; their copied
    columns agree with the booking; a line is final exactly when its booking is.

    One aggregate over lines joined to bookings (the largest join of the checks, done once).
    """
    provisional, final = BookingStatus.PROVISIONAL, BookingStatus.FINAL
    disagreeing = (
        _bookings(tenant_ids)
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
        .values_list("id", flat=True)[:MAX_REPORTED]
    )
    return [Violation("tenancy", f"line {line} connects groups of another tenant") for line in bad]


def check_alignment(tenant_ids=None) -> list[Violation]:
    """Quarter starts are aligned (PostgreSQL enforces it with CHECKs; SQLite relies on this)."""
    bad = _lines(tenant_ids).exclude(quarter_start__minute__in=(0, 15, 30, 45), quarter_start__second=0)
    return [
        Violation("alignment", f"line {line} starts at {quarter.isoformat()}, not on a quarter-hour")
        for line, quarter in bad.values_list("id", "quarter_start")[:MAX_REPORTED]
    ]


LEDGER_CHECKS = [check_zero_sum, check_lines_against_bookings, check_tenancy, check_alignment]
