from django import forms
from django.contrib import admin, messages

from allocation.measurements import measurements_ingest
from allocation.models import AllocationBooking, AllocationScheme, Measurement, Quality, SchemeConsumer, SchemeSource
from core.rest.fields import format_instant
from core.status import Status


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


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

    list_display = ["quarter_start", "group", "energy_wh", "quality", "status", "updated_at", "updated_by", "tenant"]
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
