"""Imbalances: the materialised inflow, outflow and net per group and quarter-hour of a local day."""

import datetime as dt

from django.core.paginator import Paginator
from django.shortcuts import render

from balance_groups.selectors import group_list
from dashboard.views.common import day_window, parse_day, tenant_view, zone_name
from settlement.selectors import imbalance_list, imbalance_totals

ROWS_PER_PAGE = 100


@tenant_view
def imbalances(request, tenant):
    day = parse_day(request.GET.get("day"))
    start, end = day_window(day)
    groups = list(group_list(tenant=tenant).order_by("code"))
    chosen = next((group for group in groups if str(group.pk) == request.GET.get("group")), None)
    rows = imbalance_list(tenant=tenant, start=start, end=end, group=chosen)
    if request.GET.get("nonzero") == "1":
        rows = rows.exclude(net_wh=0)
    # A tenant's nets sum to zero in every quarter-hour (double entry): a sum says something for one group only.
    totals = imbalance_totals(rows) if chosen else None
    page = Paginator(rows, ROWS_PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "day": day,
        "start": start,
        "totals": totals,
        "previous_day": day - dt.timedelta(days=1),
        "next_day": day + dt.timedelta(days=1),
        "zone": zone_name(),
        "groups": groups,
        "chosen": chosen,
        "nonzero": request.GET.get("nonzero") == "1",
        "page": page,
        "page_query": query.urlencode(),
    }
    return render(request, "dashboard/imbalances.html", context)
