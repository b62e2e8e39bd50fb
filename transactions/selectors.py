import datetime as dt

from django.db.models import Q

from transactions.models import Booking, ClarificationCase, LedgerLine


def group_lines(*, group):
    return LedgerLine.objects.filter(Q(source=group) | Q(destination=group))


def booking_list(*, tenant):
    return Booking.objects.filter(tenant=tenant).select_related("source", "destination")


def group_bookings(*, group, start: dt.datetime | None = None, end: dt.datetime | None = None):
    bookings = booking_list(tenant=group.tenant).filter(Q(source=group) | Q(destination=group))
    if start is not None:
        bookings = bookings.filter(end__gt=start)
    if end is not None:
        bookings = bookings.filter(start__lt=end)
    return bookings


def clarification_list(*, tenant, status: str | None = None):
    cases = ClarificationCase.objects.filter(tenant=tenant)
    return cases.filter(status=status) if status else cases
