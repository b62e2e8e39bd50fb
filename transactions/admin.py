from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from core.admin import ReadOnlyAdminMixin, wh_column
from core.errors import BkmError
from transactions.models import Booking, BookingStatus, ClarificationCase, ClarificationStatus, LedgerLine
from transactions.services import booking_finalize, booking_reverse, clarification_resolve


class LedgerLineInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = LedgerLine
    fields = ["quarter_start", "energy_wh", "is_final"]
    readonly_fields = fields
    ordering = ["quarter_start"]
    extra = 0
    max_num = 0
    show_change_link = False


@admin.register(Booking)
class BookingAdmin(admin.ModelAdmin):
    """Bookings are written by services only; here they are read, finalized and reversed."""

    list_display = [
        "external_id",
        "source",
        "destination",
        "start",
        "end",
        wh_column("energy_wh", _("Energy (Wh)")),
        "kind",
        "status",
        "name",
        "tenant",
    ]
    list_display_links = ["external_id"]
    list_filter = ["kind", "status", "tenant"]
    search_fields = ["external_id", "name", "source__code", "destination__code"]
    date_hierarchy = "start"
    list_select_related = ["tenant", "source", "destination"]
    readonly_fields = [field.name for field in Booking._meta.fields]
    inlines = [LedgerLineInline]
    actions = ["finalize", "reverse"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # Viewing is allowed; every field is read-only and final bookings never change.
        return request.method in ("GET", "HEAD") and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Finalize the selected bookings")
    def finalize(self, request, queryset):
        done = 0
        for booking in queryset.filter(status=BookingStatus.PROVISIONAL):
            try:
                booking_finalize(booking=booking, actor=request.user)
                done += 1
            except BkmError as error:
                self.message_user(request, f"{booking}: {error.detail}", messages.ERROR)
        self.message_user(request, f"{done} booking(s) finalized.")

    @admin.action(description="Reverse the selected final bookings")
    def reverse(self, request, queryset):
        done = 0
        for booking in queryset:
            try:
                booking_reverse(booking=booking, actor=request.user)
                done += 1
            except BkmError as error:
                self.message_user(request, f"{booking}: {error.detail}", messages.ERROR)
        self.message_user(request, f"{done} reversal booking(s) created.")


@admin.register(LedgerLine)
class LedgerLineAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "quarter_start",
        "source",
        "destination",
        wh_column("energy_wh", _("Energy (Wh)")),
        "is_final",
        "booking",
    ]
    list_filter = ["tenant", "is_final"]
    search_fields = ["booking__external_id", "source__code", "destination__code"]
    date_hierarchy = "quarter_start"
    list_select_related = ["source", "destination", "booking"]
    show_full_result_count = False

    def has_view_permission(self, request, obj=None):
        return request.user.is_staff


@admin.register(ClarificationCase)
class ClarificationCaseAdmin(admin.ModelAdmin):
    list_display = ["created_at", "tenant", "reason", "channel", "status", "detail", "resolved_by"]
    list_filter = ["tenant", "status", "reason", "channel"]
    search_fields = ["detail", "resolution_note"]
    readonly_fields = [field.name for field in ClarificationCase._meta.fields]
    actions = ["rebook", "dismiss"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return request.method in ("GET", "HEAD") and super().has_change_permission(request, obj)

    def _resolve(self, request, queryset, action):
        done = 0
        for case in queryset.filter(status=ClarificationStatus.OPEN):
            try:
                clarification_resolve(case=case, actor=request.user, action=action, note=f"{action} in admin")
                done += 1
            except BkmError as error:
                self.message_user(request, f"Case {case.pk}: {error.detail}", messages.ERROR)
        self.message_user(request, f"{done} case(s) resolved ({action}).")

    @admin.action(description="Rebook the selected cases")
    def rebook(self, request, queryset):
        self._resolve(request, queryset, "rebook")

    @admin.action(description="Dismiss the selected cases")
    def dismiss(self, request, queryset):
        self._resolve(request, queryset, "dismiss")
