"""Reading balances and the settlement hierarchy."""

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import Count, Q, Sum

from balance_groups.models import BalanceGroup
from bkm.quarters import buckets, require_window
from settlement.rules import rules_in_force
from transactions.models import LedgerLine

FINAL = "final"
PROVISIONAL = "provisional"


@dataclass
class Interval:
    start: dt.datetime
    end: dt.datetime
    inflow_wh: int = 0
    outflow_wh: int = 0
    provisional_lines: int = 0

    @property
    def net_wh(self) -> int:
        return self.inflow_wh - self.outflow_wh

    @property
    def status(self) -> str:
        return PROVISIONAL if self.provisional_lines else FINAL

    def as_dict(self) -> dict:
        return {
            "start": self.start,
            "end": self.end,
            "inflow_wh": self.inflow_wh,
            "outflow_wh": self.outflow_wh,
            "net_wh": self.net_wh,
            "status": self.status,
        }


def quarter_flows(*, group: BalanceGroup, start: dt.datetime, end: dt.datetime) -> dict[dt.datetime, Interval]:
    """Inflow, outflow and provisional-line count per quarter-hour that has lines."""
    flows: dict[dt.datetime, Interval] = {}
    window = LedgerLine.objects.filter(quarter_start__gte=start, quarter_start__lt=end)
    for direction, lookup in (("inflow_wh", "destination"), ("outflow_wh", "source")):
        rows = (
            window.filter(**{lookup: group})
            .values("quarter_start")
            .annotate(energy=Sum("energy_wh"), provisional=Count("id", filter=Q(is_final=False)))
        )
        for row in rows:
            quarter = row["quarter_start"]
            interval = flows.setdefault(quarter, Interval(quarter, quarter + dt.timedelta(minutes=15)))
            setattr(interval, direction, getattr(interval, direction) + row["energy"])
            interval.provisional_lines += row["provisional"]
    return flows


def group_balance(*, group: BalanceGroup, start: dt.datetime, end: dt.datetime, resolution: str = "15min") -> dict:
    """A group's inflow, outflow, net and status over ``[start, end)``, bucketed by resolution.

    Buckets are zero-filled; ``1d`` buckets are local days (92, 96 or 100 quarter-hours). A
    bucket is final exactly when none of its lines is provisional.
    """
    start, end = require_window(start, end)
    flows = quarter_flows(group=group, start=start, end=end)
    intervals = [Interval(bucket_start, bucket_end) for bucket_start, bucket_end in buckets(start, end, resolution)]
    position = 0
    for quarter in sorted(flows):
        while intervals[position].end <= quarter:
            position += 1
        bucket, flow = intervals[position], flows[quarter]
        bucket.inflow_wh += flow.inflow_wh
        bucket.outflow_wh += flow.outflow_wh
        bucket.provisional_lines += flow.provisional_lines
    total = Interval(start, end)
    for bucket in intervals:
        total.inflow_wh += bucket.inflow_wh
        total.outflow_wh += bucket.outflow_wh
        total.provisional_lines += bucket.provisional_lines
    return {"group": group.pk, **total.as_dict(), "intervals": [bucket.as_dict() for bucket in intervals]}


def group_status(*, group: BalanceGroup) -> str:
    """``final`` exactly when none of the group's lines is provisional."""
    provisional = LedgerLine.objects.filter(Q(source=group) | Q(destination=group), is_final=False).exists()
    return PROVISIONAL if provisional else FINAL


@dataclass
class TreeNode:
    group: BalanceGroup
    rule: object = None
    children: list["TreeNode"] = field(default_factory=list)


def hierarchy_tree(*, tenant, at: dt.datetime) -> list[TreeNode]:
    """The settlement hierarchy in force at ``at``: groups without a rule are roots, every other
    group hangs under its largest-share target."""
    nodes = {group.pk: TreeNode(group) for group in BalanceGroup.objects.filter(tenant=tenant).order_by("code")}
    parent_of = {}
    for rule in rules_in_force(tenant=tenant, at=at):
        targets = sorted(rule.targets.all(), key=lambda target: (-target.share, target.parent.code))
        if rule.group_id in nodes and targets:
            nodes[rule.group_id].rule = rule
            parent_of[rule.group_id] = targets[0].parent_id
    roots = []
    for group_id, node in nodes.items():
        parent_id = parent_of.get(group_id)
        if parent_id in nodes:
            nodes[parent_id].children.append(node)
        else:
            roots.append(node)
    return roots
