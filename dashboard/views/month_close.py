"""Closing a local month for a whole site: the checklist first, then the confirmed close."""

from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import BadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods

from allocation.month_close import month_checklist, month_close
from core.errors import BkmError, InvalidInput
from dashboard.month_close_forms import MonthCloseForm
from dashboard.templatetags.formatting import local, local_zone
from dashboard.views.common import apply_error, get_group_or_404, tenant_view, zone_name


def _link(item: dict) -> str | None:
    if not item["url_name"]:
        return None
    url = reverse(item["url_name"], args=item["args"])
    return f"{url}?{urlencode(item['query'])}" if item["query"] else url


def _checklist_or_400(tenant, top, month: str) -> dict:
    try:
        checklist = month_checklist(tenant=tenant, top=top, month=month)
    except InvalidInput as error:
        raise BadRequest(error.detail) from None
    for item in (*checklist["blockers"], *checklist["notices"]):
        item["link"] = _link(item)
    return checklist


def _form(checklist: dict, data=None) -> MonthCloseForm:
    return MonthCloseForm(
        data,
        initial={"groups": [row["code"] for row in checklist["to_close"]]},
        count=len(checklist["to_close"]),
        until_text=local_zone(checklist["end"]),
        offer_provisional=checklist["provisional"],
    )


def _with_errors(form: MonthCloseForm, errors) -> MonthCloseForm:
    """A fresh (unbound) form for the current checklist that shows the refusal: the operator confirms anew."""
    form._errors = errors  # an unbound form never cleans, so these are the errors it shows
    return form


@tenant_view
@require_http_methods(["GET", "POST"])
def month_close_view(request, tenant, ref, month):
    top = get_group_or_404(tenant, ref)
    checklist = _checklist_or_400(tenant, top, month)
    form = _form(checklist, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            result = month_close(
                tenant=tenant,
                top=top,
                month=month,
                actor=request.user,
                accept_provisional=form.cleaned_data.get("accept_provisional", False),
                confirmed_groups=form.cleaned_data["groups"],
            )
        except BkmError as error:
            apply_error(form, error)
            # The state may have changed meanwhile: show the checklist as it is now, keep the errors.
            checklist = _checklist_or_400(tenant, top, month)
            form = _with_errors(_form(checklist), form.errors)
        else:
            count = len(result["closed"])
            messages.success(
                request,
                ngettext(
                    "%(month)s is closed for %(top)s: %(count)d group closed.",
                    "%(month)s is closed for %(top)s: %(count)d groups closed.",
                    count,
                )
                % {"month": local(checklist["start"], "month"), "top": top.code, "count": count}
                + (" " + _("Provisional figures were accepted.") if result["accepted_provisional"] else ""),
            )
            return redirect("dashboard:month-close", ref=str(top.pk), month=month)
    context = {
        "top": top,
        "month": month,
        "checklist": checklist,
        "form": form,
        "zone": zone_name(),
        "until": checklist["end"],
    }
    return render(request, "dashboard/month_close.html", context, status=400 if form.errors else 200)
