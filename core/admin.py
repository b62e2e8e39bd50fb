"""What every app's admin shares: instants in the site's zone (shown and entered), the zone named in the
header, and the read-only base of the admins that only show what the services wrote."""

import datetime as dt
import functools
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib import admin
from django.utils import formats, timezone
from django.utils.functional import lazy
from django.utils.translation import gettext, gettext_lazy


def site_zone() -> ZoneInfo:
    return ZoneInfo(settings.SITE_TIME_ZONE)


def _header() -> str:
    # Read at render time: the zone the page was really rendered in (the site's, or UTC for the fallback).
    return gettext("BKM administration (times in %(zone)s)") % {"zone": timezone.get_current_timezone_name()}


admin.site.site_header = lazy(_header, str)()
admin.site.site_title = gettext_lazy("BKM administration")
admin.site.index_title = gettext_lazy("Balance groups, bookings, settlement and allocation")


def in_site_zone(view, request, *args, **kwargs):
    """Runs an admin view with the site's zone active and renders its page inside it, so lists,
    read-only fields, date filters and form inputs all mean local time (a template response renders
    only after the view returned). An instant at the edge of the calendar (year 1 or 9999) has no local
    representation: such a page is rendered again in UTC instead of failing, and its header says so."""
    with timezone.override(site_zone()):
        response = view(request, *args, **kwargs)
        if not hasattr(response, "render"):
            return response
        try:
            return response.render()
        except OverflowError:
            pass
    with timezone.override(dt.UTC):
        response.content = response.rendered_content
    return response


def _admin_view_in_site_zone(view, cacheable=False, *, admin_view=admin.site.admin_view):
    return admin_view(functools.wraps(view)(functools.partial(in_site_zone, view)), cacheable)


# Every page of the admin (the index, each list and form) goes through the site's admin_view.
admin.site.admin_view = _admin_view_in_site_zone


class ReadOnlyAdminMixin:
    """Shown, never added, changed or deleted here: written by the services only."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    pass


def wh_column(field: str, description):
    """A list column of whole watt-hours with the language's thousands separator, sortable by ``field``."""

    @admin.display(description=description, ordering=field)
    def column(obj):
        return formats.number_format(getattr(obj, field), force_grouping=True)

    column.__name__ = f"{field}_column"
    return column
