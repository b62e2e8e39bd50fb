"""Settlement invariants for ``manage.py check_ledger`` (registered with ``core.integrity``).

Each check is ``(tenant_ids) -> list[Violation]``, reads with SQL and streams its rows, so no check
holds the ledger in memory. Days still marked dirty (waiting for the worker) are skipped: their
imbalances and settlements are legitimately behind until the next run.
"""

import datetime as dt

from django.db.models import Count, F, Q

from core.integrity import MAX_REPORTED, Violation, first_rows, stream, tenant_sql
from core.quarters import local_date, local_day_bounds
from settlement.models import DirtyDay, SettlementBooking
from transactions.aggregates import group_quarter_flows_sql
from transactions.models import Booking, BookingKind


def _instant(value) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


class DirtyDays:
    """The days waiting for recomputation, whose computed figures may legitimately lag."""

    def __init__(self, tenant_ids):
        rows = DirtyDay.objects.all()
        if tenant_ids is not None:
            rows = rows.filter(tenant_id__in=tenant_ids)
        self.days = {(tenant_id, day) for tenant_id, day in rows.values_list("tenant_id", "day_start")}
        self.tenants = {tenant_id for tenant_id, _ in self.days}

    def covers(self, tenant_id, instant) -> bool:
        if tenant_id not in self.tenants:
            return False
        instant = _instant(instant)
        return (tenant_id, local_day_bounds(local_date(instant))[0]) in self.days


def check_imbalances(tenant_ids=None) -> list:
    """The materialised imbalances equal one aggregate over the lines (values and status): no row
    missing, none wrong, none without lines. One full outer join, so the lines are read once."""
    dirty = DirtyDays(tenant_ids)
    lines, params = tenant_sql("l", tenant_ids)
    imbalances, imbalance_params = tenant_sql("i", tenant_ids)
    aggregate = group_quarter_flows_sql("1 = 1" + lines)
    compared = f"""
        SELECT COALESCE(a.tenant_id, i.tenant_id), COALESCE(a.group_id, i.group_id),
               COALESCE(a.quarter_start, i.quarter_start), a.inflow, a.outflow, a.final,
               i.id, i.inflow_wh, i.outflow_wh, CASE WHEN i.is_final THEN 1 ELSE 0 END
        FROM ({aggregate}) AS a
        FULL OUTER JOIN (SELECT * FROM settlement_imbalance i WHERE 1 = 1 {imbalances}) AS i
            ON i.group_id = a.group_id AND i.quarter_start = a.quarter_start
        WHERE a.group_id IS NULL OR i.id IS NULL OR i.inflow_wh <> a.inflow OR i.outflow_wh <> a.outflow
           OR CASE WHEN i.is_final THEN 1 ELSE 0 END <> a.final
    """  # noqa: S608 - only placeholders are formatted in
    violations = []
    rows = stream(compared, params + params + imbalance_params)
    for tenant_id, group_id, quarter, inflow, outflow, final, row_id, have_in, have_out, have_final in rows:
        if dirty.covers(tenant_id, quarter):
            continue
        if inflow is None:
            detail = f"group {group_id} quarter {quarter}: imbalance row without lines"
        elif row_id is None:
            detail = f"group {group_id} quarter {quarter}: lines give {inflow - outflow} Wh but no imbalance row"
        else:
            detail = (
                f"group {group_id} quarter {quarter}: imbalance in/out/final {have_in}/{have_out}/{have_final}, "
                f"lines {inflow}/{outflow}/{final}"
            )
        violations.append(Violation("imbalance", detail))
        if len(violations) >= MAX_REPORTED:
            break
    return violations


def check_settlement_keys(tenant_ids=None) -> list:
    """One key per settlement booking, matching it: kind, window, and the child <-> parent pair."""
    links = SettlementBooking.objects.all()
    bookings = Booking.objects.filter(kind=BookingKind.SETTLEMENT)
    if tenant_ids is not None:
        links = links.filter(tenant_id__in=tenant_ids)
        bookings = bookings.filter(tenant_id__in=tenant_ids)
    violations = [
        Violation("settlement_key", f"settlement booking {pk} has no settlement key")
        for (pk,) in first_rows(bookings.filter(settlement__isnull=True).values_list("pk"))
    ]
    duplicates = (
        links.values("rule_id", "parent_id", "window_start", "revision")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .values_list("rule_id", "parent_id", "window_start", "n")
    )
    violations += [
        Violation("settlement_key", f"key {rule}/{parent}/{window_start} used {n}x")
        for rule, parent, window_start, n in first_rows(duplicates)
    ]
    mismatched = links.exclude(
        Q(booking__kind=BookingKind.SETTLEMENT)
        & Q(booking__tenant_id=F("tenant_id"))
        & Q(booking__start=F("window_start"))
        & Q(booking__end=F("window_end"))
        & (
            Q(booking__source_id=F("child_id"), booking__destination_id=F("parent_id"))
            | Q(booking__source_id=F("parent_id"), booking__destination_id=F("child_id"))
        )
    ).values_list("booking_id")
    violations += [
        Violation("settlement_key", f"settlement booking {pk} does not match its key")
        for (pk,) in first_rows(mismatched)
    ]
    return violations[:MAX_REPORTED]


def check_settled_windows(tenant_ids=None) -> list:
    """After settlement a child's net over each settled window is zero."""
    dirty = DirtyDays(tenant_ids)
    links, params = tenant_sql("s", tenant_ids)
    sql = f"""
        SELECT w.tenant_id, w.child_id, w.window_start, w.window_end, SUM(i.net_wh)
        FROM (SELECT DISTINCT s.tenant_id, s.child_id, s.window_start, s.window_end
              FROM settlement_settlementbooking s WHERE 1 = 1 {links}) AS w
        JOIN settlement_imbalance i
          ON i.group_id = w.child_id AND i.quarter_start >= w.window_start AND i.quarter_start < w.window_end
        GROUP BY w.tenant_id, w.child_id, w.window_start, w.window_end
        HAVING SUM(i.net_wh) <> 0
    """  # noqa: S608
    violations = []
    for tenant_id, child_id, start, end, net in stream(sql, params):
        if dirty.covers(tenant_id, start) or dirty.covers(tenant_id, _instant(end) - dt.timedelta(minutes=15)):
            continue
        violations.append(Violation("settled_window", f"group {child_id} window {start}..{end}: net {net} Wh, not 0"))
        if len(violations) >= MAX_REPORTED:
            break
    return violations


SETTLEMENT_CHECKS = [check_imbalances, check_settlement_keys, check_settled_windows]
