"""CSV imports of bookings and of measurements: a preview (dry run), line-numbered errors, a summary."""

from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from allocation.csv_io import COLUMNS as MEASUREMENT_COLUMNS
from allocation.csv_io import measurements_csv_import
from core.errors import BkmError, CsvFormatError
from dashboard.forms import CsvUploadForm, refuse_oversized_upload
from dashboard.views.common import apply_error, tenant_view
from transactions.csv_io import COLUMNS as BOOKING_COLUMNS
from transactions.csv_io import csv_import


def _upload(request, tenant, *, importer, columns, template: str, kind: str):
    form = CsvUploadForm(request.POST or None, request.FILES or None)
    result = None
    text = ""
    if getattr(request, "upload_too_large", False):
        refuse_oversized_upload(form)
    elif request.method == "POST" and form.is_valid():
        text = form.cleaned_data["text"]
        dry_run = request.POST.get("action") != "import"
        try:
            result = importer(tenant=tenant, actor=request.user, text=text, dry_run=dry_run)
        except CsvFormatError as error:
            form.add_error("file", error.detail)
        except BkmError as error:
            apply_error(form, error)
    context = {"form": form, "result": result, "csv_text": text, "columns": columns, "kind": kind}
    return render(request, template, context, status=400 if form.errors else 200)


@tenant_view
@require_http_methods(["GET", "POST"])
def csv_upload(request, tenant):
    return _upload(
        request,
        tenant,
        importer=csv_import,
        columns=BOOKING_COLUMNS,
        template="dashboard/csv_upload.html",
        kind="booking",
    )


@tenant_view
@require_http_methods(["GET", "POST"])
def measurement_upload(request, tenant):
    return _upload(
        request,
        tenant,
        importer=measurements_csv_import,
        columns=MEASUREMENT_COLUMNS,
        template="dashboard/measurement_upload.html",
        kind="measurement",
    )
