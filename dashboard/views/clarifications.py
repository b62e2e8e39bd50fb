"""Clarification cases (Klärfälle): the open list and resolving a case."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from core.errors import BkmError
from dashboard.forms import ResolveForm
from dashboard.views.common import apply_error, scoped_or_404, tenant_view
from transactions.models import ClarificationStatus
from transactions.selectors import clarification_list
from transactions.services import clarification_resolve

CASES_PER_PAGE = 20


def _render_list(request, tenant, bound_case=None, bound_form=None, status=200):
    show = request.GET.get("status") if request.GET.get("status") in ClarificationStatus.values else "open"
    cases = clarification_list(tenant=tenant, status=show).select_related("booking").order_by("-created_at", "id")
    page = Paginator(cases, CASES_PER_PAGE).get_page(request.GET.get("page"))
    rows = []
    for case in page:
        form = bound_form if bound_case is not None and case.pk == bound_case.pk else ResolveForm(prefix=str(case.pk))
        rows.append({"case": case, "form": form})
    if bound_case is not None and all(row["case"].pk != bound_case.pk for row in rows):
        rows.insert(0, {"case": bound_case, "form": bound_form})
    context = {"page": page, "rows": rows, "show": show, "statuses": ClarificationStatus.choices}
    return render(request, "dashboard/clarifications.html", context, status=status)


@tenant_view
def clarification_index(request, tenant):
    return _render_list(request, tenant)


@tenant_view
@require_POST
def clarification_resolve_view(request, tenant, pk):
    case = scoped_or_404(clarification_list(tenant=tenant), pk=pk)
    form = ResolveForm(request.POST, prefix=str(case.pk))
    if form.is_valid():
        try:
            case = clarification_resolve(
                case=case, actor=request.user, action=form.cleaned_data["action"], note=form.cleaned_data["note"]
            )
        except BkmError as error:
            apply_error(form, error)
        else:
            if case.booking_id:
                messages.success(request, f"Case rebooked as booking {case.booking}.")
            elif case.status == ClarificationStatus.REBOOKED:
                messages.success(request, f"Case rebooked. {case.resolution_note}".strip())
            else:
                messages.success(request, "Case dismissed.")
            return redirect("dashboard:clarifications")
    return _render_list(request, tenant, bound_case=case, bound_form=form, status=400)
