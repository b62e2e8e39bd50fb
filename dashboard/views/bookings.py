"""Actions on single bookings: finalize, reverse."""

from django.contrib import messages
from django.views.decorators.http import require_POST

from core.errors import BkmError
from dashboard.views.common import redirect_back, refuse, scoped_or_404, tenant_view
from transactions.selectors import booking_list
from transactions.services import booking_finalize, booking_reverse


@tenant_view
@require_POST
def booking_finalize_view(request, tenant, pk):
    booking = scoped_or_404(booking_list(tenant=tenant), pk=pk)
    try:
        booking = booking_finalize(booking=booking, actor=request.user)
    except BkmError as error:
        refuse(request, error, prefix=f"Booking {booking} was not finalized")
    else:
        messages.success(request, f"Booking {booking} is final.")
    return redirect_back(request)


@tenant_view
@require_POST
def booking_reverse_view(request, tenant, pk):
    booking = scoped_or_404(booking_list(tenant=tenant), pk=pk)
    try:
        reversal = booking_reverse(booking=booking, actor=request.user)
    except BkmError as error:
        refuse(request, error, prefix=f"Booking {booking} was not reversed")
    else:
        messages.success(
            request, f"Booking {booking} reversed: reversal booking of {reversal.energy_wh} Wh written (final)."
        )
    return redirect_back(request)
