"""Settlement runs: the recent runs and triggering a run for a window."""

import datetime as dt

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from core.errors import BkmError
from core.quarters import site_zone
from dashboard.forms import SettlementRunForm
from dashboard.views.common import apply_error, day_window, tenant_view, today_local, zone_name
from settlement.selectors import settlement_run_list
from settlement.services import settlement_run_request

RUNS_SHOWN = 50


@tenant_view
@require_http_methods(["GET", "POST"])
def settlement_runs(request, tenant):
    yesterday = today_local() - dt.timedelta(days=1)
    start, end = day_window(yesterday)
    form = SettlementRunForm(request.POST or None, initial={"start": start, "end": end})
    if request.method == "POST" and form.is_valid():
        try:
            run = settlement_run_request(
                tenant=tenant, actor=request.user, start=form.cleaned_data["start"], end=form.cleaned_data["end"]
            )
        except BkmError as error:
            apply_error(form, error)
        else:
            zone = site_zone()
            messages.success(
                request,
                f"Settlement run for {run.start.astimezone(zone):%Y-%m-%d %H:%M} to "
                f"{run.end.astimezone(zone):%Y-%m-%d %H:%M} ({zone_name()}) requested: {run.status}.",
            )
            return redirect("dashboard:runs")
    runs = settlement_run_list(tenant=tenant)[:RUNS_SHOWN]
    context = {"form": form, "runs": runs, "zone": zone_name()}
    return render(request, "dashboard/runs.html", context, status=400 if form.errors else 200)
