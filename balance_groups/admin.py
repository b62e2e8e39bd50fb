from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.utils import timezone

from balance_groups.models import ApiClient, AuditEntry, BalanceGroup, Tenant, User
from balance_groups.services import (
    METERING_POINT,
    api_client_create,
    api_client_revoke,
    group_create,
    group_update,
)
from core.errors import BkmError
from core.quarters import require_aligned
from settlement.selectors import rule_in_force


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "created_at"]
    search_fields = ["code", "name"]


@admin.register(User)
class BkmUserAdmin(UserAdmin):
    list_display = [*UserAdmin.list_display, "tenant"]
    list_filter = [*UserAdmin.list_filter, "tenant"]
    fieldsets = [*UserAdmin.fieldsets, ("Tenant", {"fields": ["tenant"]})]
    add_fieldsets = [*UserAdmin.add_fieldsets, ("Tenant", {"fields": ["tenant"]})]


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    list_display = ["name", "tenant", "key_prefix", "read_only", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["tenant", "read_only", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "key_prefix", "tenant__code"]
    fields = ["tenant", "name", "read_only", "key_prefix", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["key_prefix", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "tenant"] if obj else self.readonly_fields

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        client, key = api_client_create(tenant=obj.tenant, name=obj.name, read_only=obj.read_only, actor=request.user)
        obj.pk = client.pk
        obj.key_prefix = client.key_prefix
        messages.warning(request, f"Token for {client.name} (shown once, store it now): {key}")

    @admin.action(description="Revoke the selected clients' tokens")
    def revoke(self, request, queryset):
        for client in queryset.filter(revoked_at__isnull=True):
            api_client_revoke(client=client, actor=request.user)
        self.message_user(request, "Tokens revoked.")

    def has_delete_permission(self, request, obj=None):
        return False


class BalanceGroupForm(forms.ModelForm):
    """Checks what the services check, so a refusal shows on the form instead of failing the save."""

    class Meta:
        model = BalanceGroup
        fields = ["tenant", "code", "name", "kind", "valid_from", "valid_until", "metering_point"]

    def clean_metering_point(self):
        value = (self.cleaned_data.get("metering_point") or "").strip()
        if value and not METERING_POINT.fullmatch(value):
            raise forms.ValidationError("At most 64 letters or digits (a MaLo or MeLo id), no spaces.")
        return value or None

    def clean(self):
        cleaned = super().clean()
        for field in ("valid_from", "valid_until"):
            if cleaned.get(field):
                try:
                    require_aligned(cleaned[field], field)
                except BkmError as error:
                    self.add_error(field, error.detail)
        return cleaned


@admin.register(BalanceGroup)
class BalanceGroupAdmin(admin.ModelAdmin):
    list_display = [
        "code",
        "name",
        "kind",
        "metering_point",
        "tenant",
        "parent_now",
        "valid_from",
        "valid_until",
        "closed_until",
    ]
    list_filter = ["tenant", "kind"]
    search_fields = ["code", "name", "metering_point"]
    ordering = ["tenant", "kind", "code"]
    form = BalanceGroupForm
    fields = ["tenant", "code", "name", "kind", "valid_from", "valid_until", "metering_point", "closed_until"]
    readonly_fields = ["closed_until"]

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "tenant", "kind"] if obj else self.readonly_fields

    @admin.display(description="parent (rule in force now)")
    def parent_now(self, group):
        rule = rule_in_force(group=group, at=timezone.now())
        if rule is None:
            return "-"
        return ", ".join(f"{target.parent.code} {target.share / 100:g}%" for target in rule.targets.all())

    def save_model(self, request, obj, form, change):
        try:
            if change:
                changes = {field: form.cleaned_data[field] for field in form.changed_data if field in form.cleaned_data}
                group_update(group=obj, actor=request.user, **changes)
            else:
                created = group_create(
                    tenant=obj.tenant,
                    actor=request.user,
                    code=obj.code,
                    name=obj.name,
                    kind=obj.kind,
                    valid_from=obj.valid_from,
                    valid_until=obj.valid_until,
                    metering_point=obj.metering_point,
                )
                obj.pk = created.pk
        except BkmError as error:
            # Rare: a refusal the form could not foresee (e.g. validity cutting off bookings).
            self.message_user(request, f"Not saved: {error.detail}", messages.ERROR)

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["at", "tenant", "actor", "action", "object_type", "object_id"]
    list_filter = ["tenant", "action", "object_type"]
    search_fields = ["actor", "object_id", "action"]
    date_hierarchy = "at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
