from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from core.admin import ReadOnlyAdmin, wh_column
from settlement.models import DirtyDay, Imbalance, SettlementBooking, SettlementRule, SettlementRun, SettlementTarget


class SettlementTargetInline(admin.TabularInline):
    model = SettlementTarget
    extra = 0
    autocomplete_fields = ["parent"]


@admin.register(SettlementRule)
class SettlementRuleAdmin(admin.ModelAdmin):
    list_display = ["group", "interval", "effective_from", "effective_until", "targets_display", "tenant"]
    list_filter = ["tenant", "interval"]
    search_fields = ["group__code", "group__name", "targets__parent__code"]
    date_hierarchy = "effective_from"
    inlines = [SettlementTargetInline]
    list_select_related = ["group", "tenant"]

    @admin.display(description="targets")
    def targets_display(self, rule):
        return ", ".join(str(target) for target in rule.targets.all())

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("targets__parent")

    def has_change_permission(self, request, obj=None):
        # Versions are kept as they were: a change is a new version (rule_change), never an edit.
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False


@admin.register(SettlementRun)
class SettlementRunAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "tenant",
        "start",
        "end",
        "status",
        "trigger",
        "groups",
        "lines_read",
        "bookings_created",
        "bookings_updated",
        "bookings_finalized",
        "duration_display",
    ]
    list_filter = ["status", "trigger", "tenant"]
    date_hierarchy = "created_at"
    list_select_related = ["tenant"]
    readonly_fields = [field.name for field in SettlementRun._meta.fields] + ["duration_display"]

    @admin.display(description="duration")
    def duration_display(self, run):
        return f"{run.duration.total_seconds():.2f} s" if run.duration else "-"


@admin.register(Imbalance)
class ImbalanceAdmin(ReadOnlyAdmin):
    list_display = [
        "quarter_start",
        "group",
        wh_column("inflow_wh", _("Inflow (Wh)")),
        wh_column("outflow_wh", _("Outflow (Wh)")),
        wh_column("net_wh", _("Net (Wh)")),
        "line_count",
        "is_final",
        "tenant",
    ]
    list_filter = [("group", admin.RelatedFieldListFilter), "is_final", "tenant"]
    search_fields = ["group__code", "group__name"]
    date_hierarchy = "quarter_start"
    list_select_related = ["group", "tenant"]
    show_full_result_count = False


@admin.register(SettlementBooking)
class SettlementBookingAdmin(ReadOnlyAdmin):
    list_display = ["window_start", "window_end", "child", "parent", "revision", "booking", "tenant"]
    list_filter = ["tenant"]
    search_fields = ["child__code", "parent__code"]
    date_hierarchy = "window_start"
    list_select_related = ["child", "parent", "booking", "tenant"]
    show_full_result_count = False


@admin.register(DirtyDay)
class DirtyDayAdmin(ReadOnlyAdmin):
    list_display = ["tenant", "day_start", "marked_at"]
    list_filter = ["tenant"]
