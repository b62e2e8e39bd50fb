"""What an operator should trust, or check, on the overview: how the day's grid figures reconcile,
which groups only wait for their settlement window, and per group the problems worth a look.

- **Reconciliation.** The site's residual is grid import - grid export. The top balance holds what
  has already been settled onto it; the rest still sits on the groups below it, "not yet settled".
  So residual = top balance net + not yet settled, exactly (double entry).
- **Waiting vs imbalance.** A group with a rule keeps a net only until its settlement window has
  ended and the settlement job has looked at it. A net inside such a window, or on a day that waits
  for recomputation, is *waiting for settlement*; a net in windows already settled is an *imbalance*.
- **Badges** per group: gaps (quarter-hours of the day without the group's measurement while a
  scheme needs it), open clarification cases naming the group, stale figures (the day waits for the
  settlement run), provisional figures older than ``PROVISIONAL_DELAY``.
"""

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Count, Min, Q, Sum

from allocation.models import AllocationScheme, Measurement
from allocation.selectors import quarters_in_force, with_participants
from balance_groups.selectors import group_index
from core.quarters import QUARTER, floor_quarter, from_epoch, local_date, local_day_bounds
from settlement.models import Imbalance, SettlementCursor, SettlementInterval
from transactions.models import ClarificationCase, ClarificationStatus
from transactions.selectors import case_group_refs

# Values usually turn final within a day or two (meter reading, market communication); a figure
# still provisional after this deserves a look.
PROVISIONAL_DELAY = dt.timedelta(days=2)

WAITING, IMBALANCE = "waiting", "imbalance"
GAPS, CASES, STALE, OVERDUE = "gaps", "cases", "stale", "provisional_overdue"


@dataclass(frozen=True)
class Reconciliation:
    grid_import_wh: int
    grid_export_wh: int
    top_net_wh: int  # already settled onto the top balance(s)

    @property
    def residual_wh(self) -> int:
        return self.grid_import_wh - self.grid_export_wh

    @property
    def unsettled_wh(self) -> int:
        """What the groups below the top balance still hold: settled later, or an imbalance."""
        return self.residual_wh - self.top_net_wh


@dataclass
class GroupSignals:
    state: str | None = None  # WAITING, IMBALANCE or None
    waiting_wh: int = 0
    imbalance_wh: int = 0
    badges: dict = field(default_factory=dict)  # kind -> count (OVERDUE: the oldest quarter-hour)


def reconciliation(*, figures, roots, nets: dict) -> Reconciliation:
    """The top balances' day net next to the site's grid import and export (``site_figures``)."""
    top_net = sum(nets.get(root.group.pk, {}).get("net_wh", 0) for root in roots if root.children)
    return Reconciliation(figures.grid_import_wh, figures.grid_export_wh, top_net)


def settled_until(*, tenant, now: dt.datetime) -> dt.datetime:
    """Up to when the settlement job has looked for ended rule windows (a write settles its own
    days right away; without the periodic job's cursor, windows ended by now count as seen)."""
    cursor = SettlementCursor.objects.filter(tenant=tenant).values_list("checked_until", flat=True).first()
    return min(cursor, now) if cursor is not None else now


def _window_cutoffs(until: dt.datetime) -> dict:
    """Per rule interval, the start of the first window that had not ended by ``until``."""
    return {
        SettlementInterval.QUARTER_HOUR: floor_quarter(until),
        SettlementInterval.HOUR: until.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0),
        SettlementInterval.DAY: local_day_bounds(local_date(until))[0],
    }


def _walk(roots):
    for root in roots:
        stack = [root]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(node.children)


def _pending_nets(*, tenant, start, end, cutoffs: dict) -> dict:
    """``{group_id: {interval: net in quarter-hours from that interval's cutoff on}}``, one query."""
    sums = {
        interval: Sum("net_wh", filter=Q(quarter_start__gte=max(cutoff, start)), default=0)
        for interval, cutoff in cutoffs.items()
    }
    rows = (
        Imbalance.objects.filter(tenant=tenant, quarter_start__gte=start, quarter_start__lt=end)
        .values("group_id")
        .annotate(**{f"pending_{key}": value for key, value in sums.items()})
        .order_by()
    )
    return {row["group_id"]: {interval: row[f"pending_{interval}"] for interval in cutoffs} for row in rows}


def _gaps(*, tenant, start, end, now) -> dict:
    """``{group_id: quarter-hours of [start, end) over by now that a scheme needs and that have no
    measurement of the group}``."""
    ended = min(end, floor_quarter(now))
    if ended <= start:
        return {}
    versions = with_participants(
        AllocationScheme.objects.filter(tenant=tenant, effective_from__lt=ended).filter(
            Q(effective_until__isnull=True) | Q(effective_until__gt=start)
        )
    )
    missing = defaultdict(int)
    for version, lo, hi in quarters_in_force(versions, start, ended):
        members = [p.group_id for p in (*version.sources.all(), *version.consumers.all())]
        expected = (hi - lo) // int(QUARTER.total_seconds())
        found = dict(
            Measurement.objects.filter(
                group_id__in=members, quarter_start__gte=from_epoch(lo), quarter_start__lt=from_epoch(hi)
            )
            .values("group_id")
            .annotate(n=Count("id"))
            .order_by()
            .values_list("group_id", "n")
        )
        for group_id in members:
            if expected - found.get(group_id, 0) > 0:
                missing[group_id] += expected - found.get(group_id, 0)
    return dict(missing)


def _open_cases(*, tenant) -> dict:
    """``{group_id: open clarification cases whose payload names the group}``."""
    index = group_index(tenant=tenant)
    counts = defaultdict(int)
    rows = ClarificationCase.objects.filter(tenant=tenant, status=ClarificationStatus.OPEN).values_list(
        "subject", "payload"
    )
    for subject, payload in rows.iterator():
        if not isinstance(payload, dict):
            continue
        named = {group.pk for group in map(index.get, case_group_refs(subject, payload)) if group is not None}
        for group_id in named:
            counts[group_id] += 1
    return dict(counts)


def _overdue(*, tenant, now) -> dict:
    """``{group_id: start of its oldest quarter-hour still provisional PROVISIONAL_DELAY after it ended}``."""
    rows = (
        Imbalance.objects.filter(tenant=tenant, is_final=False, quarter_start__lt=now - PROVISIONAL_DELAY - QUARTER)
        .values("group_id")
        .annotate(oldest=Min("quarter_start"))
        .order_by()
    )
    return {row["group_id"]: row["oldest"] for row in rows}


def group_signals(*, tenant, roots, nets: dict, start, end, stale: bool, now: dt.datetime) -> dict:
    """``{group_id: GroupSignals}`` for every group of the hierarchy over the day ``[start, end)``.

    ``nets`` is ``group_window_nets`` of the same window, ``stale`` whether a day of it waits for
    recomputation."""
    cutoffs = _window_cutoffs(settled_until(tenant=tenant, now=now))
    pending = _pending_nets(tenant=tenant, start=start, end=end, cutoffs=cutoffs)
    gaps = _gaps(tenant=tenant, start=start, end=end, now=now)
    cases = _open_cases(tenant=tenant)
    overdue = _overdue(tenant=tenant, now=now)
    signals = {}
    for node in _walk(roots):
        pk = node.group.pk
        entry = GroupSignals()
        net = nets.get(pk, {}).get("net_wh", 0)
        if node.rule is not None:
            waiting = net if stale else pending.get(pk, {}).get(node.rule.interval, 0)
            entry.waiting_wh, entry.imbalance_wh = waiting, net - waiting
            if entry.imbalance_wh:
                entry.state = IMBALANCE
            elif entry.waiting_wh:
                entry.state = WAITING
        if gaps.get(pk):
            entry.badges[GAPS] = gaps[pk]
        if cases.get(pk):
            entry.badges[CASES] = cases[pk]
        if stale and pk in nets:
            entry.badges[STALE] = 1
        if pk in overdue:
            entry.badges[OVERDUE] = overdue[pk]
        signals[pk] = entry
    return signals
