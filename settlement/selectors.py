"""Reading balances, imbalances, runs, the rules in force and the settlement hierarchy."""

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import Count, Q, Sum

from balance_groups.models import BalanceGroup
from balance_groups.selectors import group_get
from core.errors import NotFound
from core.quarters import QUARTER, buckets, require_aligned, require_window
from core.status import Status
from settlement.models import Imbalance, SettlementRule, SettlementRun

FINAL, PROVISIONAL = Status.FINAL.value, Status.PROVISIONAL.value


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
    """Inflow, outflow and status per quarter-hour that has lines, from the materialised imbalances."""
    flows: dict[dt.datetime, Interval] = {}
    rows = Imbalance.objects.filter(group=group, quarter_start__gte=start, quarter_start__lt=end).values_list(
        "quarter_start", "inflow_wh", "outflow_wh", "is_final"
    )
    for quarter, inflow, outflow, is_final in rows:
        flows[quarter] = Interval(quarter, quarter + QUARTER, inflow, outflow, 0 if is_final else 1)
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


def group_window_nets(*, tenant, start: dt.datetime, end: dt.datetime) -> dict:
    """Inflow, outflow, net and status of every group of the tenant over ``[start, end)``, in one query.

    Returns ``{group_id: {"inflow_wh", "outflow_wh", "net_wh", "status"}}`` for groups that have
    lines in the window; a group without lines there is final with zero flows.
    """
    rows = (
        Imbalance.objects.filter(tenant=tenant, quarter_start__gte=start, quarter_start__lt=end)
        .values("group_id")
        .annotate(inflow=Sum("inflow_wh"), outflow=Sum("outflow_wh"), provisional=Count("id", filter=Q(is_final=False)))
        .order_by()
    )
    return {
        row["group_id"]: {
            "inflow_wh": row["inflow"],
            "outflow_wh": row["outflow"],
            "net_wh": row["inflow"] - row["outflow"],
            "status": PROVISIONAL if row["provisional"] else FINAL,
        }
        for row in rows
    }


def imbalance_list(*, tenant, start: dt.datetime | None = None, end: dt.datetime | None = None, group=None):
    """Materialised imbalances of a tenant, per group and quarter-hour, ordered by (quarter, group code).

    ``group`` is a ``BalanceGroup`` or a reference (UUID or code) of one of the tenant's groups.
    """
    rows = Imbalance.objects.filter(tenant=tenant).select_related("group")
    if start is not None:
        rows = rows.filter(quarter_start__gte=require_aligned(start, "start"))
    if end is not None:
        rows = rows.filter(quarter_start__lt=require_aligned(end, "end"))
    if group is not None:
        if not isinstance(group, BalanceGroup):
            group = group_get(tenant=tenant, ref=group)
        elif group.tenant_id != tenant.pk:
            raise NotFound("Balance group not found.")
        rows = rows.filter(group=group)
    return rows.order_by("quarter_start", "group__code")


def settlement_run_list(*, tenant):
    """A tenant's settlement runs, newest first."""
    return SettlementRun.objects.filter(tenant=tenant).order_by("-created_at", "-pk")


def rule_in_force(*, group: BalanceGroup, at: dt.datetime) -> SettlementRule | None:
    return (
        SettlementRule.objects.filter(group=group, effective_from__lte=at)
        .filter(Q(effective_until__isnull=True) | Q(effective_until__gt=at))
        .prefetch_related("targets__parent")
        .first()
    )


def rules_in_force(*, tenant, at: dt.datetime):
    return (
        SettlementRule.objects.filter(tenant=tenant, effective_from__lte=at)
        .filter(Q(effective_until__isnull=True) | Q(effective_until__gt=at))
        .select_related("group")
        .prefetch_related("targets__parent")
    )


def main_parent(rule: SettlementRule):
    """The parent a group is shown under: its rule's largest-share target (ties: by code)."""
    targets = sorted(rule.targets.all(), key=lambda target: (-target.share, target.parent.code))
    return targets[0].parent if targets else None


def parents_in_force(*, tenant, at: dt.datetime) -> dict:
    """group id -> (rule in force at ``at``, its main parent) for every group with a rule."""
    parents = {}
    for rule in rules_in_force(tenant=tenant, at=at):
        parent = main_parent(rule)
        if parent is not None:
            parents[rule.group_id] = (rule, parent)
    return parents


@dataclass
class TreeNode:
    group: BalanceGroup
    rule: object = None
    children: list["TreeNode"] = field(default_factory=list)


def hierarchy_tree(*, tenant, at: dt.datetime) -> list[TreeNode]:
    """The settlement hierarchy in force at ``at``: groups without a rule are roots, every other
    group hangs under its main parent."""
    nodes = {group.pk: TreeNode(group) for group in BalanceGroup.objects.filter(tenant=tenant).order_by("code")}
    parent_of = {}
    for group_id, (rule, parent) in parents_in_force(tenant=tenant, at=at).items():
        if group_id in nodes:
            nodes[group_id].rule = rule
            parent_of[group_id] = parent.pk
    roots = []
    for group_id, node in nodes.items():
        parent_id = parent_of.get(group_id)
        if parent_id in nodes:
            nodes[parent_id].children.append(node)
        else:
            roots.append(node)
    return roots
