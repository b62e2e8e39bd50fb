import io

from django import forms
from django.contrib import admin, messages
from django.http import FileResponse, Http404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from allocation.measurements import measurements_ingest
from allocation.models import (
    AllocationBooking,
    AllocationScheme,
    Correction,
    CorrectionLine,
    Interchange,
    Measurement,
    Quality,
    SchemeConsumer,
    SchemeSource,
)
from core.admin import ReadOnlyAdmin, wh_column
from core.rest.fields import format_instant
from core.status import Status


class MeasurementForm(forms.ModelForm):
    class Meta:
        model = Measurement
        fields = ["group", "quarter_start", "energy_wh", "quality", "status"]

    def clean(self):
        cleaned = super().clean()
        quality = cleaned.get("quality", getattr(self.instance, "quality", None))
        if cleaned.get("status") == Status.FINAL and quality != Quality.MEASURED:
            self.add_error("status", f"Only a measured value can be final; a {quality} value stays provisional.")
        return cleaned


@admin.register(Measurement)
class MeasurementAdmin(admin.ModelAdmin):
    """Values are written through ``measurements_ingest``, so the admin obeys the API's rules
    (alignment, closed periods, final values); a final value is shown read-only."""

    list_display = [
        "quarter_start",
        "group",
        wh_column("energy_wh", _("Energy (Wh)")),
        "quality",
        "status",
        "updated_at",
        "updated_by",
        "tenant",
    ]
    list_filter = ["quality", "status", ("quarter_start", admin.DateFieldListFilter), "tenant"]
    search_fields = ["group__code", "group__metering_point"]
    list_select_related = ["group", "tenant"]
    ordering = ["-quarter_start", "group__code"]
    show_full_result_count = False
    raw_id_fields = ["group"]
    form = MeasurementForm
    fields = ["group", "quarter_start", "energy_wh", "quality", "status", "tenant", "updated_at", "updated_by"]
    readonly_fields = ["tenant", "updated_at", "updated_by"]

    def get_readonly_fields(self, request, obj=None):
        # The key of a stored value stays; a different quarter-hour or group is another measurement.
        return [*self.readonly_fields, "group", "quarter_start"] if obj else self.readonly_fields

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.status == Status.FINAL:
            return False  # a final value is corrected through a clarification case, never edited
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        item = {
            "group": str(obj.group_id),
            "start": format_instant(obj.quarter_start),
            "energy_wh": obj.energy_wh,
            "quality": obj.quality,
            "status": obj.status,
        }
        result = measurements_ingest(
            tenant=obj.group.tenant, actor=request.user, items=[item], channel="admin", keep_refused=False
        )
        if result.rejected:
            self.message_user(request, f"Not saved: {result.rejected[0]['detail']}", messages.ERROR)
            return
        stored = Measurement.objects.get(group_id=obj.group_id, quarter_start=obj.quarter_start)
        obj.pk, obj.tenant_id = stored.pk, stored.tenant_id


class SchemeSourceInline(admin.TabularInline):
    model = SchemeSource
    fields = ["position", "group"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class SchemeConsumerInline(admin.TabularInline):
    model = SchemeConsumer
    fields = ["position", "group", "share"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(AllocationScheme)
class AllocationSchemeAdmin(ReadOnlyAdmin):
    """Versions are kept as they were: a change is a new version (``scheme_change``), never an edit."""

    list_display = ["code", "name", "method", "effective_from", "effective_until", "surplus_to", "residual_from"]
    list_filter = ["method", "tenant"]
    search_fields = ["code", "name", "sources__group__code", "consumers__group__code"]
    list_select_related = ["surplus_to", "residual_from", "tenant"]
    ordering = ["tenant", "code", "effective_from"]
    inlines = [SchemeSourceInline, SchemeConsumerInline]


@admin.register(AllocationBooking)
class AllocationBookingAdmin(ReadOnlyAdmin):
    """The keys of the engine's allocation bookings (the bookings are in the ledger)."""

    list_display = ["quarter_start", "source", "destination", "scheme", "booking", "tenant"]
    list_filter = ["tenant"]
    search_fields = ["source__code", "destination__code", "scheme__code"]
    list_select_related = ["source", "destination", "scheme", "booking", "tenant"]
    ordering = ["-quarter_start"]
    show_full_result_count = False


class CorrectionLineInline(admin.TabularInline):
    model = CorrectionLine
    fields = ["source", "destination", "old_wh", "new_wh", "reversal", "booking"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Correction)
class CorrectionAdmin(ReadOnlyAdmin):
    """Late values for closed periods and what they booked (``allocation.corrections``); never edited."""

    list_display = ["quarter_start", "booked_start", "group", "energy_wh", "quality", "scheme", "created_by", "tenant"]
    list_filter = ["tenant"]
    search_fields = ["group__code", "scheme__code"]
    list_select_related = ["group", "scheme", "tenant"]
    ordering = ["-booked_start", "-id"]
    inlines = [CorrectionLineInline]


@admin.register(Interchange)
class InterchangeAdmin(ReadOnlyAdmin):
    """MSCONS interchanges as they arrived and what their import did: evidence, so never changed or deleted."""

    list_display = [
        "received_at",
        "tenant",
        "channel",
        "filename",
        "reference",
        "status",
        "values",
        "created",
        "replaced",
        "unchanged",
        "refused",
    ]
    list_filter = ["status", "channel", "tenant"]
    search_fields = ["reference", "filename", "^sha256"]
    list_select_related = ["tenant"]
    date_hierarchy = "received_at"
    show_full_result_count = False
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "tenant",
                    "received_at",
                    "received_by",
                    "channel",
                    "filename",
                    "size_bytes",
                    "sha256",
                    "original",
                    "duplicate_of",
                    "status",
                    "error",
                ]
            },
        ),
        ("Envelope", {"fields": ["reference", "sender", "recipient", "messages", "values"]}),
        ("Result", {"fields": ["created", "replaced", "unchanged", "refused", "refusal_table", "day_table"]}),
    ]
    readonly_fields = ["original", "refusal_table", "day_table"]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("content")  # the bytes only for a download

    def get_urls(self):
        download = path(
            "<path:object_id>/download/",
            self.admin_site.admin_view(self.download),
            name=f"{self.opts.app_label}_{self.opts.model_name}_download",
        )
        return [download, *super().get_urls()]

    def download(self, request, object_id):
        interchange = self.get_object(request, object_id)
        if interchange is None or not self.has_view_permission(request, interchange):
            raise Http404("No such interchange.")
        return FileResponse(
            io.BytesIO(interchange.original_bytes()),
            as_attachment=True,
            filename=interchange.filename or f"interchange-{interchange.pk}.edi",
            content_type="application/EDIFACT",
        )

    @admin.display(description="original bytes")
    def original(self, interchange):
        url = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_download", args=[interchange.pk])
        return format_html('<a href="{}">Download ({} bytes)</a>', url, interchange.size_bytes)

    @admin.display(description="refusals")
    def refusal_table(self, interchange):
        if not interchange.refusals:
            return "none"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            ((row["segment"], row["code"], row["detail"], row.get("text", "")) for row in interchange.refusals),
        )
        shown = len(interchange.refusals)
        more = ""
        if interchange.refused > shown:
            more = format_html("<p>The first {} of {} refusals are kept.</p>", shown, interchange.refused)
        return format_html(
            "<table><thead><tr><th>segment</th><th>code</th><th>detail</th><th>text</th></tr></thead>"
            "<tbody>{}</tbody></table>{}",
            rows,
            more,
        )

    @admin.display(description="values per day")
    def day_table(self, interchange):
        if not interchange.days:
            return "none"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    day["metering_point"],
                    day["group"],
                    day["day"],
                    day["values"],
                    day["energy_wh"],
                    ", ".join(f"{quality} {count}" for quality, count in sorted(day["qualities"].items())),
                )
                for day in interchange.days
            ),
        )
        return format_html(
            "<table><thead><tr><th>metering point</th><th>group</th><th>local day</th><th>values</th>"
            "<th>energy (Wh)</th><th>qualities</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )
