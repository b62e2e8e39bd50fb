"""Materialised imbalances: one set-based aggregate over a unit's lines (``transactions.aggregates``)."""

import datetime as dt

from django.db import connection
from django.db.models import Sum

from core.db import is_postgres
from settlement.models import Imbalance
from transactions.aggregates import group_quarter_flows_sql

UNIT_LINES = "l.tenant_id = %(tenant)s AND l.quarter_start >= %(lo)s AND l.quarter_start < %(hi)s"
UNIT_FLOWS_SQL = group_quarter_flows_sql(UNIT_LINES)

IMBALANCE_COLUMNS = "(tenant_id, group_id, quarter_start, inflow_wh, outflow_wh, net_wh, line_count, is_final)"
IMBALANCE_ROWS = (
    "%(tenant)s, a.group_id, a.quarter_start, a.inflow, a.outflow, a.inflow - a.outflow, a.lines, a.final = 1"
)

# SQLite: the unit's rows are deleted, then replaced with the aggregate.
IMBALANCE_INSERT_SQL = f"""
INSERT INTO settlement_imbalance {IMBALANCE_COLUMNS}
SELECT {IMBALANCE_ROWS} FROM ({UNIT_FLOWS_SQL}) AS a
"""  # noqa: S608 - constant SQL, values are parameters

# PostgreSQL: one statement that writes only rows whose values changed and drops rows without lines,
# so a run over an unchanged day writes nothing (a measured saving on large days).
IMBALANCE_UPSERT_SQL = f"""
WITH a AS ({UNIT_FLOWS_SQL}),
upsert AS (
    INSERT INTO settlement_imbalance {IMBALANCE_COLUMNS}
    SELECT {IMBALANCE_ROWS} FROM a
    ON CONFLICT (group_id, quarter_start) DO UPDATE SET
        inflow_wh = EXCLUDED.inflow_wh, outflow_wh = EXCLUDED.outflow_wh, net_wh = EXCLUDED.net_wh,
        line_count = EXCLUDED.line_count, is_final = EXCLUDED.is_final
    WHERE (settlement_imbalance.inflow_wh, settlement_imbalance.outflow_wh, settlement_imbalance.line_count,
           settlement_imbalance.is_final)
          IS DISTINCT FROM (EXCLUDED.inflow_wh, EXCLUDED.outflow_wh, EXCLUDED.line_count, EXCLUDED.is_final)
    RETURNING 1
)
DELETE FROM settlement_imbalance i
WHERE i.tenant_id = %(tenant)s AND i.quarter_start >= %(lo)s AND i.quarter_start < %(hi)s
  AND NOT EXISTS (SELECT 1 FROM a WHERE a.group_id = i.group_id AND a.quarter_start = i.quarter_start)
"""  # noqa: S608


def recompute_imbalances(tenant_id, u0: dt.datetime, u1: dt.datetime) -> tuple[int, set]:
    """Bring the unit's imbalances to the aggregate over its lines; return (lines read, group ids)."""
    params = {
        "tenant": tenant_id,
        "lo": connection.ops.adapt_datetimefield_value(u0),
        "hi": connection.ops.adapt_datetimefield_value(u1),
    }
    with connection.cursor() as cursor:
        if is_postgres():
            cursor.execute(IMBALANCE_UPSERT_SQL, params)
        else:
            Imbalance.objects.filter(tenant_id=tenant_id, quarter_start__gte=u0, quarter_start__lt=u1).delete()
            cursor.execute(IMBALANCE_INSERT_SQL, params)
    # No ordering: the model's default one (through the group's code) would make DISTINCT per row.
    summary = Imbalance.objects.filter(tenant_id=tenant_id, quarter_start__gte=u0, quarter_start__lt=u1).order_by()
    lines_read = (summary.aggregate(total=Sum("line_count"))["total"] or 0) // 2
    return lines_read, set(summary.values_list("group_id", flat=True).distinct())
