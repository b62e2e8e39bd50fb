"""Bookings across groups: the search, and the actions on single bookings (finalize, reverse)."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from balance_groups.selectors import group_list
from core.errors import BkmError
from dashboard.booking_search_form import BookingSearchForm
from dashboard.templatetags.formatting import wh
from dashboard.views.common import redirect_back, refuse, scoped_or_404, tenant_view, zone_name
from transactions.selectors import booking_list, booking_search
from transactions.services import booking_finalize, booking_reverse

BOOKINGS_PER_PAGE = 50


@tenant_view
@require_GET
def booking_search_view(request, tenant):
    form = BookingSearchForm(request.GET or None, tenant=tenant)
    searched = form.is_bound and form.is_valid()
    bookings = booking_search(tenant=tenant, **form.filters()) if searched else booking_search(tenant=tenant)
    if form.is_bound and not searched:
        bookings = bookings.none()  # a bad filter shows its message, not an unfiltered list
    page = Paginator(bookings, BOOKINGS_PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "page": page,
        "page_query": query.urlencode(),
        "zone": zone_name(),
        "group_codes": group_list(tenant=tenant).order_by("code").values_list("code", flat=True),
    }
    if request.htmx and request.htmx.target == "bookings":
        return render(request, "dashboard/_bookings.html", context)
    return render(request, "dashboard/bookings.html", context, status=400 if form.errors else 200)


@tenant_view
@require_POST
def booking_finalize_view(request, tenant, pk):
    booking = scoped_or_404(booking_list(tenant=tenant), pk=pk)
    try:
        booking = booking_finalize(booking=booking, actor=request.user)
    except BkmError as error:
        refuse(request, error, prefix=_("Booking %(booking)s was not finalized") % {"booking": booking})
    else:
        messages.success(request, _("Booking %(booking)s is final.") % {"booking": booking})
    return redirect_back(request)


@tenant_view
@require_POST
def booking_reverse_view(request, tenant, pk):
    booking = scoped_or_404(booking_list(tenant=tenant), pk=pk)
    try:
        reversal = booking_reverse(booking=booking, actor=request.user)
    except BkmError as error:
        refuse(request, error, prefix=_("Booking %(booking)s was not reversed") % {"booking": booking})
    else:
        messages.success(
            request,
            _("Booking %(booking)s reversed: reversal booking of %(energy)s Wh written (final).")
            % {"booking": booking, "energy": wh(reversal.energy_wh)},
        )
    return redirect_back(request)
