"""Clarification cases (Klärfälle): the list and resolving a case (rebook, correct and rebook, dismiss)."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from core.errors import BkmError
from dashboard.clarification_cases import ClarificationForm, case_views
from dashboard.views.common import apply_error, scoped_or_404, tenant_view
from transactions.clarify import corrected_payload
from transactions.models import ClarificationStatus
from transactions.selectors import clarification_list
from transactions.services import clarification_resolve

CASES_PER_PAGE = 20


def _render_list(request, tenant, bound_case=None, bound_form=None, status=200):
    show = request.GET.get("status") if request.GET.get("status") in ClarificationStatus.values else "open"
    cases = clarification_list(tenant=tenant, status=show).select_related("booking").order_by("-created_at", "id")
    page = Paginator(cases, CASES_PER_PAGE).get_page(request.GET.get("page"))
    shown = list(page)
    if bound_case is not None and all(case.pk != bound_case.pk for case in shown):
        shown.insert(0, bound_case)
    views = case_views(shown, tenant=tenant)
    for view in views:
        if view.case.status == ClarificationStatus.OPEN:
            bound = bound_case is not None and view.case.pk == bound_case.pk
            view.form = bound_form if bound else ClarificationForm(view=view)
    rows = [{"case": view.case, "form": view.form, "view": view} for view in views]
    context = {"page": page, "rows": rows, "show": show, "statuses": ClarificationStatus.choices}
    return render(request, "dashboard/clarifications.html", context, status=status)


@tenant_view
def clarification_index(request, tenant):
    return _render_list(request, tenant)


def _resolved_message(case, corrected: bool) -> str:
    if case.status == ClarificationStatus.DISMISSED:
        return _("Case dismissed.")
    if case.booking_id:
        return _("Case rebooked as booking %(booking)s.") % {"booking": case.booking}
    lead = _("Case rebooked with the corrected values.") if corrected else _("Case rebooked.")
    return f"{lead} {case.resolution_note}".strip()


@tenant_view
@require_POST
def clarification_resolve_view(request, tenant, pk):
    case = scoped_or_404(clarification_list(tenant=tenant), pk=pk)
    view = case_views([case], tenant=tenant)[0]
    form = ClarificationForm(request.POST, view=view)
    if form.is_valid():
        action = form.cleaned_data["action"]
        corrected = None
        if action == "correct":
            corrected = corrected_payload(case.payload, form.cleaned_data["changes"], case.subject)
        try:
            case = clarification_resolve(
                case=case,
                actor=request.user,
                action="dismiss" if action == "dismiss" else "rebook",
                note=form.cleaned_data["note"],
                corrected=corrected,
            )
        except BkmError as error:
            apply_error(form, error)
        else:
            messages.success(request, _resolved_message(case, corrected is not None))
            return redirect("dashboard:clarifications")
    return _render_list(request, tenant, bound_case=case, bound_form=form, status=400)
