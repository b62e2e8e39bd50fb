"""MSCONS import: upload with a preview (kept, imported in a second step) or directly, and the received interchanges."""

import datetime as dt

from django.core.paginator import Paginator
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from allocation.models import InterchangeStatus, Quality
from allocation.mscons.services import mscons_import, mscons_import_previewed
from allocation.selectors import interchange_list
from core.errors import BkmError
from core.quarters import local_day_bounds
from dashboard.forms import MsconsUploadForm, PreviewedImportForm, refuse_oversized_upload
from dashboard.views.common import apply_error, attachment, scoped_or_404, tenant_view

INTERCHANGES_PER_PAGE = 50
ROWS_SHOWN = 1000  # of the refusals and of the day table; the counts above them are complete
CHANNEL = "dashboard"


def _label(choices, value: str) -> str:
    """The label of a stored value; a value this version does not know is shown as it is."""
    return choices(value).label if value in choices.values else value


def _day_row(row: dict) -> dict:
    """A row of the day table with its day as the local midnight (for the date filter) and its qualities named."""
    day = row.get("day")
    try:
        day = day if isinstance(day, dt.date) else dt.date.fromisoformat(str(day))
        day_start = local_day_bounds(day)[0]
    except (TypeError, ValueError, OverflowError):
        day_start = None
    qualities = [(_label(Quality, quality), count) for quality, count in row.get("qualities", {}).items()]
    return {**row, "day_start": day_start, "quality_counts": qualities}


def _tables(*, refusals: list[dict], refused: int, days: list[dict]) -> dict:
    """The refusals and the values per metering point and local day, each cut at ``ROWS_SHOWN`` rows."""
    return {
        "refusals": refusals[:ROWS_SHOWN],
        "refused": refused,
        "days": [_day_row(row) for row in days[:ROWS_SHOWN]],
        "days_total": len(days),
    }


@tenant_view
@require_http_methods(["GET", "POST"])
def mscons_upload(request, tenant):
    form = MsconsUploadForm(request.POST or None, request.FILES or None)
    step = PreviewedImportForm(request.POST) if "interchange" in request.POST else None
    report = None
    if getattr(request, "upload_too_large", False):
        refuse_oversized_upload(form, hint=_("send larger interchanges to the API or to manage.py import_mscons"))
    elif step is not None:
        form = MsconsUploadForm()
        if step.is_valid():
            previewed = scoped_or_404(interchange_list(tenant=tenant), pk=step.cleaned_data["interchange"])
            try:
                report = mscons_import_previewed(interchange=previewed, actor=request.user)
            except BkmError as error:
                apply_error(step, error)
    elif request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            report = mscons_import(
                tenant=tenant,
                actor=request.user,
                source=upload.chunks,  # seeks to the start on every call: one pass each
                channel=CHANNEL,
                filename=upload.name,
                dry_run=request.POST.get("action") != "import",
                keep_preview=True,
            )
        except BkmError as error:
            apply_error(form, error, field_map={"body": "file"})
    context = {"form": form, "step": step, "report": report}
    if report is not None:
        context.update(_tables(refusals=report.rejected, refused=len(report.rejected), days=report.days))
    refused = form.errors or (step is not None and step.errors)
    return render(request, "dashboard/mscons_upload.html", context, status=400 if refused else 200)


@tenant_view
def mscons_interchanges(request, tenant):
    rows = interchange_list(tenant=tenant).defer("refusals", "days")
    page = Paginator(rows, INTERCHANGES_PER_PAGE).get_page(request.GET.get("page"))
    for row in page:
        row.status_label = _label(InterchangeStatus, row.status)
    return render(request, "dashboard/mscons_interchanges.html", {"page": page})


@tenant_view
def mscons_interchange(request, tenant, pk):
    interchange = scoped_or_404(interchange_list(tenant=tenant), pk=pk)
    previewed = interchange.status == InterchangeStatus.PREVIEWED
    context = {
        "interchange": interchange,
        "previewed": previewed,
        "status_label": _label(InterchangeStatus, interchange.status),
        "importable": previewed and not interchange.duplicate_of_id,  # a copy would change nothing
        # The checksum in four parts a narrow screen may break between (copied whole).
        "sha256_parts": [interchange.sha256[i : i + 16] for i in range(0, len(interchange.sha256), 16)],
    }
    context.update(_tables(refusals=interchange.refusals, refused=interchange.refused, days=interchange.days))
    return render(request, "dashboard/mscons_interchange.html", context)


@tenant_view
def mscons_interchange_download(request, tenant, pk):
    interchange = scoped_or_404(interchange_list(tenant=tenant).defer(None).select_related("duplicate_of"), pk=pk)
    return attachment(
        interchange.original_bytes(),
        filename=interchange.filename or f"interchange-{interchange.pk}.edi",
        content_type="application/edifact",
    )
