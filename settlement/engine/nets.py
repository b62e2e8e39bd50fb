"""What each settled group should hand on: its net per rule window, split by its targets' shares."""

import bisect
import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from django.db import connection

from balance_groups.models import BalanceGroup
from core.db import epoch_sql, in_list, in_params, sql_values
from core.errors import InvalidInput
from core.quarters import to_epoch
from core.splitting import split_by_shares
from settlement.engine.windows import rule_windows
from transactions.aggregates import line_flows_sql

# A group's net per quarter-hour: all its lines (``transactions.aggregates``) minus its own
# settlement lines, which are reached from the settlement keys through the line index. Plain
# aggregates whose plans do not depend on fresh statistics; read back as epochs and integers.
CHILD_NETS_SQL = """
SELECT x.group_id, {epoch}, SUM(x.net), SUM(x.provisional)
FROM (
    SELECT f.group_id, f.quarter_start, f.inflow - f.outflow AS net, 1 - f.final AS provisional
    FROM ({flows}) AS f
    WHERE f.group_id IN ({groups})
    UNION ALL
    SELECT s.child_id, l.quarter_start,
           CASE WHEN l.destination_id = s.child_id THEN -l.energy_wh ELSE l.energy_wh END,
           CASE WHEN l.is_final THEN 0 ELSE -1 END
    FROM settlement_settlementbooking s
    JOIN transactions_ledgerline l ON l.booking_id = s.booking_id
    WHERE s.child_id IN ({groups}) AND s.window_start >= %(lo)s AND s.window_start < %(hi)s
      AND l.tenant_id = %(tenant)s AND l.quarter_start >= %(lo)s AND l.quarter_start < %(hi)s
) AS x
GROUP BY x.group_id, x.quarter_start
"""

UNIT_LINES = "l.tenant_id = %(tenant)s AND l.quarter_start >= %(lo)s AND l.quarter_start < %(hi)s"


def child_nets(tenant_id, group_ids, u0: dt.datetime, u1: dt.datetime) -> dict:
    """Per group: ``{quarter epoch: [net, provisional line count]}`` over the group's lines in the
    unit, without the group's own settlement bookings."""
    group_ids = list(group_ids)
    sql = CHILD_NETS_SQL.format(
        epoch=epoch_sql("x.quarter_start"), flows=line_flows_sql(UNIT_LINES), groups=in_list("group", len(group_ids))
    )
    params = {
        "tenant": tenant_id,
        "lo": connection.ops.adapt_datetimefield_value(u0),
        "hi": connection.ops.adapt_datetimefield_value(u1),
        **in_params("group", sql_values(BalanceGroup._meta.pk, group_ids)),
    }
    as_id = BalanceGroup._meta.pk.to_python  # SQLite answers ids as text
    nets: dict = defaultdict(dict)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for group_id, epoch, energy, provisional in cursor.fetchall():
            nets[as_id(group_id)][int(epoch)] = [int(energy), int(provisional)]
    return nets


def levels(versions_by_group: dict) -> dict:
    """Level of each settled group: 0 for a group nobody settles onto, else 1 + its children's max."""
    children_of = defaultdict(set)
    for group_id, versions in versions_by_group.items():
        for version in versions:
            for target in version.targets.all():
                children_of[target.parent_id].add(group_id)
    result: dict = {}

    def level(group_id, path=()):
        if group_id in result:
            return result[group_id]
        if group_id in path:
            raise InvalidInput(f"The settlement hierarchy has a cycle through group {group_id}.")
        children = children_of.get(group_id, ())
        value = 1 + max(level(child, (*path, group_id)) for child in children) if children else 0
        result[group_id] = value
        return value

    return {group_id: level(group_id) for group_id in versions_by_group}


@dataclass(slots=True)
class Wanted:
    """One target's part of a child's net over one ended rule window."""

    rule_id: object
    child_id: object
    parent_id: object
    window_start: dt.datetime
    window_end: dt.datetime
    amount: int  # signed: > 0 the child delivers to the parent
    final: bool
    start_epoch: int


def wanted_for_level(versions_by_group, group_ids, u0, u1, now, nets) -> list[Wanted]:
    """The settlement every group of one level should have for the windows that ended by ``now``."""
    wanted = []
    targets_of: dict = {}  # version pk -> its targets (``.all()`` builds a new queryset per call)
    for group_id in group_ids:
        windows = [w for w in rule_windows(versions_by_group[group_id], u0, u1) if w[2] <= now]
        if not windows:
            continue
        starts = [to_epoch(w[1]) for w in windows]
        ends = [to_epoch(w[2]) for w in windows]
        totals = [[0, 0] for _ in windows]
        for epoch, (net, provisional) in nets.get(group_id, {}).items():
            index = bisect.bisect_right(starts, epoch) - 1
            if index >= 0 and epoch < ends[index]:
                totals[index][0] += net
                totals[index][1] += provisional
        for (version, start, end), start_epoch, (net, provisional) in zip(windows, starts, totals, strict=True):
            targets = targets_of.get(version.pk)
            if targets is None:
                targets = targets_of[version.pk] = list(version.targets.all())
            parts = split_by_shares(net, [target.share for target in targets])
            for target, part in zip(targets, parts, strict=True):
                wanted.append(
                    Wanted(version.pk, group_id, target.parent_id, start, end, part, provisional == 0, start_epoch)
                )
    return wanted
