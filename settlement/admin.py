from django.contrib import admin

from settlement.models import SettlementRule, SettlementTarget


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
