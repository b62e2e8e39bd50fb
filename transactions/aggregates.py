"""The per-group aggregate of ledger lines, written once for every reader and both backends.

A line moves energy from its source to its destination, so it counts twice: as inflow of the
destination and as outflow of the source. ``LINE_FLOWS_SQL`` yields one row per (line, group it
touches); ``GROUP_QUARTER_FLOWS_SQL`` sums them per group and quarter-hour. The imbalances, the
settlement nets and ``check_ledger`` are all built on these two statements.

``{where}`` is a condition on the lines (alias ``l``) with named parameters, e.g.
``l.tenant_id = %(tenant)s AND l.quarter_start >= %(lo)s``.
"""

LINE_FLOWS_SQL = """
SELECT l.tenant_id, l.destination_id AS group_id, l.quarter_start, l.energy_wh AS inflow, 0 AS outflow,
       CASE WHEN l.is_final THEN 1 ELSE 0 END AS final
FROM transactions_ledgerline l WHERE {where}
UNION ALL
SELECT l.tenant_id, l.source_id AS group_id, l.quarter_start, 0 AS inflow, l.energy_wh AS outflow,
       CASE WHEN l.is_final THEN 1 ELSE 0 END AS final
FROM transactions_ledgerline l WHERE {where}
"""

GROUP_QUARTER_FLOWS_SQL = """
SELECT f.tenant_id, f.group_id, f.quarter_start, SUM(f.inflow) AS inflow, SUM(f.outflow) AS outflow,
       COUNT(*) AS lines, MIN(f.final) AS final
FROM ({lines}) AS f
GROUP BY f.tenant_id, f.group_id, f.quarter_start
"""


def line_flows_sql(where: str) -> str:
    return LINE_FLOWS_SQL.format(where=where)


def group_quarter_flows_sql(where: str) -> str:
    """Per (tenant, group, quarter-hour): inflow, outflow, line count and final (1 when every line is)."""
    return GROUP_QUARTER_FLOWS_SQL.format(lines=line_flows_sql(where))
