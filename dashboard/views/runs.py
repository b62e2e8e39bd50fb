"""Settlement runs: every recorded run, the days settled right after writes, and triggering a run for a window."""

import datetime as dt

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from core.errors import BkmError
from dashboard.forms import SettlementRunForm
from dashboard.templatetags.formatting import local, local_zone
from dashboard.views.common import apply_error, day_window, tenant_view, today_local, zone_name
from settlement.selectors import SettlementOnWrite, settlement_run_list, settlements_on_write
from settlement.services import settlement_run_request

RUNS_PER_PAGE = 50
ON_WRITE_PER_PAGE = 20

RUN_STATUS = {
    "queued": gettext_lazy("queued"),
    "running": gettext_lazy("running"),
    "succeeded": gettext_lazy("succeeded"),
    "failed": gettext_lazy("failed"),
    "abandoned": gettext_lazy("abandoned (its worker stopped; retried)"),
}
RUN_TRIGGER = {
    "manual": gettext_lazy("manual (API or dashboard)"),
    "command": gettext_lazy("manage.py settle"),
    "schedule": gettext_lazy("automatic (periodic job)"),
    "service": gettext_lazy("service call"),
    "retry": gettext_lazy("retry of an abandoned run"),
}


def _label(labels: dict, value: str) -> str:
    return labels.get(value, value)


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
            messages.success(
                request,
                _("Settlement run for %(start)s to %(end)s requested: %(status)s.")
                % {"start": local(run.start), "end": local_zone(run.end), "status": _label(RUN_STATUS, run.status)},
            )
            return redirect("dashboard:runs")
    runs = Paginator(settlement_run_list(tenant=tenant), RUNS_PER_PAGE).get_page(request.GET.get("page"))
    on_write = Paginator(settlements_on_write(tenant=tenant), ON_WRITE_PER_PAGE).get_page(request.GET.get("written"))
    context = {
        "form": form,
        "runs": runs,
        "run_rows": [(run, _label(RUN_STATUS, run.status), _label(RUN_TRIGGER, run.trigger)) for run in runs],
        "on_write": on_write,
        "on_write_rows": [SettlementOnWrite.from_entry(entry) for entry in on_write],
        "zone": zone_name(),
    }
    return render(request, "dashboard/runs.html", context, status=400 if form.errors else 200)
