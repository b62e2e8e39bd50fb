"""The overview: hierarchy with today's figures, the top balance's residual, cases and runs."""

import datetime as dt

from django.shortcuts import render
from django.utils import timezone

from dashboard.charts import balance_chart_data
from dashboard.figures import site_figures
from dashboard.overview_signals import PROVISIONAL_DELAY, group_signals, reconciliation
from dashboard.views.common import day_window, parse_day, tenant_view, zone_name
from settlement.selectors import group_balance, group_window_nets, hierarchy_tree, settlement_run_list, stale_days
from transactions.models import ClarificationStatus
from transactions.selectors import clarification_list


def _flatten(roots, nets, signals):
    """Tree nodes in display order with their depth, the day's figures (None: no data) and signals."""
    rows = []

    def walk(node, depth):
        rule = node.rule
        targets = list(rule.targets.all()) if rule is not None else []
        rows.append(
            {
                "group": node.group,
                "depth": depth,
                "rule": rule,
                "targets": targets,
                "day": nets.get(node.group.pk),
                "signals": signals[node.group.pk],
                "has_children": bool(node.children),
            }
        )
        for child in node.children:
            walk(child, depth + 1)

    for root in roots:
        walk(root, 0)
    return rows


@tenant_view
def overview(request, tenant):
    day = parse_day(request.GET.get("day"))
    start, end = day_window(day)
    now = timezone.now()
    roots = hierarchy_tree(tenant=tenant, at=min(max(now, start), end - dt.timedelta(minutes=15)))
    stale = bool(stale_days(tenant_id=tenant.pk, start=start, end=end))
    nets = group_window_nets(tenant=tenant, start=start, end=end)
    signals = group_signals(tenant=tenant, roots=roots, nets=nets, start=start, end=end, stale=stale, now=now)
    top = next((root.group for root in roots if root.children), None)
    residual = group_balance(group=top, start=start, end=end) if top is not None else None
    figures = site_figures(tenant=tenant, roots=roots, start=start, end=end)
    context = {
        "day": day,
        "day_start": start,
        "previous_day": day - dt.timedelta(days=1),
        "next_day": day + dt.timedelta(days=1),
        "zone": zone_name(),
        "rows": _flatten(roots, nets, signals),
        "top": top,
        "top_codes": figures.top_codes,
        "residual": residual,
        "reconciliation": reconciliation(figures=figures, roots=roots, nets=nets),
        "has_data": bool(nets) or stale,  # a day waiting for its first recomputation has data, not yet figures
        "stale": stale,
        "provisional_delay_days": PROVISIONAL_DELAY.days,
        "chart": balance_chart_data(residual, series=("net",)) if residual else None,
        "figures": figures,
        "open_cases": clarification_list(tenant=tenant, status=ClarificationStatus.OPEN).count(),
        "last_run": settlement_run_list(tenant=tenant).first(),
    }
    return render(request, "dashboard/overview.html", context)
