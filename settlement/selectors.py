"""Reading balances, imbalances, runs, the rules in force and the settlement hierarchy."""

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import Count, Exists, OuterRef, Q, Sum
from django.utils.translation import gettext as _

from balance_groups.models import AuditAction, AuditEntry, BalanceGroup
from balance_groups.selectors import group_get
from core.db import EpochSeconds
from core.errors import NotFound
from core.quarters import (
    QUARTER,
    buckets,
    from_epoch,
    local_date,
    local_day_bounds,
    require_aligned,
    require_window,
)
from core.status import Status
from settlement.models import DirtyDay, Imbalance, RunStatus, SettlementRule, SettlementRun

FINAL, PROVISIONAL = Status.FINAL.value, Status.PROVISIONAL.value


@dataclass
class Interval:
    start: dt.datetime
    end: dt.datetime
    inflow_wh: int = 0
    outflow_wh: int = 0
    provisional_lines: int = 0
    line_count: int = 0  # 0: no data (not a final zero)
    stale: bool = False  # a change inside is recorded but not yet recomputed

    @property
    def net_wh(self) -> int:
        return self.inflow_wh - self.outflow_wh

    @property
    def status(self) -> str:
        """Final only when every line is final and the figures are up to date."""
        return PROVISIONAL if self.provisional_lines or self.stale else FINAL

    def add(self, other: "Interval") -> None:
        self.inflow_wh += other.inflow_wh
        self.outflow_wh += other.outflow_wh
        self.provisional_lines += other.provisional_lines
        self.line_count += other.line_count
        self.stale = self.stale or other.stale

    def as_dict(self) -> dict:
        return {
            "start": self.start,
            "end": self.end,
            "inflow_wh": self.inflow_wh,
            "outflow_wh": self.outflow_wh,
            "net_wh": self.net_wh,
            "status": self.status,
            "line_count": self.line_count,
        }


def stale_days(*, tenant_id, start: dt.datetime, end: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
    """The local days overlapping ``[start, end)`` whose ledger changed since they were computed."""
    first = local_day_bounds(local_date(start))[0]
    days = DirtyDay.objects.filter(tenant_id=tenant_id, day_start__gte=first, day_start__lt=end).order_by("day_start")
    return [local_day_bounds(local_date(day)) for day in days.values_list("day_start", flat=True).distinct()]


def up_to_date(*, tenant_id, start: dt.datetime, end: dt.datetime) -> bool:
    """Whether every figure of ``[start, end)`` reflects every recorded change (no day waits for a run)."""
    return not stale_days(tenant_id=tenant_id, start=start, end=end)


def quarter_flows(*, group: BalanceGroup, start: dt.datetime, end: dt.datetime) -> dict[dt.datetime, Interval]:
    """Inflow, outflow and status per quarter-hour that has lines, from the materialised imbalances."""
    flows: dict[dt.datetime, Interval] = {}
    # Instants read as integers: the driver's time-zone-aware timestamp loader costs more than the
    # rest of a month's balance together.
    rows = (
        Imbalance.objects.filter(group=group, quarter_start__gte=start, quarter_start__lt=end)
        .annotate(epoch=EpochSeconds("quarter_start"))
        .values_list("epoch", "inflow_wh", "outflow_wh", "is_final", "line_count")
    )
    for epoch, inflow, outflow, is_final, lines in rows:
        quarter = from_epoch(epoch)
        flows[quarter] = Interval(quarter, quarter + QUARTER, inflow, outflow, 0 if is_final else 1, lines)
    return flows


def group_balance(*, group: BalanceGroup, start: dt.datetime, end: dt.datetime, resolution: str = "15min") -> dict:
    """A group's inflow, outflow, net and status over ``[start, end)``, bucketed by resolution.

    Buckets are zero-filled (``line_count`` 0: no data); ``1d`` buckets are local days (92, 96 or
    100 quarter-hours). A bucket is final exactly when none of its lines is provisional and no change
    inside it waits for recomputation; ``up_to_date`` says whether any does.
    """
    start, end = require_window(start, end)
    # The marks first: a recomputation that commits between the two reads then makes the figures
    # look stale for one read, never a stale figure look up to date.
    stale = stale_days(tenant_id=group.tenant_id, start=start, end=end)
    flows = quarter_flows(group=group, start=start, end=end)
    intervals = [Interval(bucket_start, bucket_end) for bucket_start, bucket_end in buckets(start, end, resolution)]
    position = 0
    for quarter in sorted(flows):
        while intervals[position].end <= quarter:
            position += 1
        bucket, flow = intervals[position], flows[quarter]  # inline: a month has ~3,000 quarter-hours
        bucket.inflow_wh += flow.inflow_wh
        bucket.outflow_wh += flow.outflow_wh
        bucket.provisional_lines += flow.provisional_lines
        bucket.line_count += flow.line_count
    if stale:
        for bucket in intervals:
            bucket.stale = any(d0 < bucket.end and bucket.start < d1 for d0, d1 in stale)
    total = Interval(start, end)
    for bucket in intervals:
        total.add(bucket)
    return {
        "group": group.pk,
        **total.as_dict(),
        "up_to_date": not stale,
        "intervals": [bucket.as_dict() for bucket in intervals],
    }


def group_window_nets(*, tenant, start: dt.datetime, end: dt.datetime) -> dict:
    """Inflow, outflow, net and status of every group of the tenant over ``[start, end)``, in one query.

    Returns ``{group_id: {"inflow_wh", "outflow_wh", "net_wh", "status"}}`` for groups that have
    lines in the window; a group without lines there is final with zero flows. Nothing is final
    while a change in the window waits for recomputation.
    """
    stale = bool(stale_days(tenant_id=tenant.pk, start=start, end=end))  # read first, as in group_balance
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
            "status": PROVISIONAL if row["provisional"] or stale else FINAL,
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
            raise NotFound(_("Balance group not found."))
        rows = rows.filter(group=group)
    return rows.order_by("quarter_start", "group__code")


def settlement_run_list(*, tenant):
    """A tenant's settlement runs, newest first."""
    return SettlementRun.objects.filter(tenant=tenant).order_by("-created_at", "-pk")


def imbalance_totals(rows) -> dict:
    """Inflow, outflow and net summed over imbalance rows (``imbalance_list``), in Wh."""
    totals = rows.order_by().aggregate(inflow_wh=Sum("inflow_wh"), outflow_wh=Sum("outflow_wh"), net_wh=Sum("net_wh"))
    return {key: value or 0 for key, value in totals.items()}


@dataclass(frozen=True)
class SettlementOnWrite:
    """One local day settled right after a write, outside any recorded run (the single-process mode)."""

    at: dt.datetime
    start: dt.datetime
    end: dt.datetime
    created: int
    updated: int
    finalized: int
    deleted: int

    @classmethod
    def from_entry(cls, entry: AuditEntry) -> "SettlementOnWrite":
        data = entry.data
        return cls(
            at=entry.at,
            start=dt.datetime.fromisoformat(data["start"]),
            end=dt.datetime.fromisoformat(data["end"]),
            created=int(data.get("created", 0)),
            updated=int(data.get("updated", 0)),
            finalized=int(data.get("finalized", 0)),
            deleted=int(data.get("deleted", 0)),
        )


def settlements_on_write(*, tenant):
    """The audit entries of settled days that no recorded run wrote, newest first.

    Every unit that changes bookings leaves a ``settlement.apply`` entry; one written while a run of
    the tenant was running belongs to that run, whose counts include it. The others are the days
    settled right away after a write (no broker): map them with ``SettlementOnWrite.from_entry``.
    """
    in_a_run = SettlementRun.objects.filter(tenant_id=OuterRef("tenant_id"), started_at__lte=OuterRef("at")).filter(
        Q(finished_at__gte=OuterRef("at")) | Q(finished_at__isnull=True, status=RunStatus.RUNNING)
    )
    return (
        AuditEntry.objects.filter(tenant=tenant, action=AuditAction.SETTLEMENT_APPLY)
        .exclude(Exists(in_a_run))
        .order_by("-at", "-id")
    )


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
