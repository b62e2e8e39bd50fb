"""Reading the ledger: lines, bookings, clarification cases, and a group's status."""

import datetime as dt

from django.db.models import BooleanField, Exists, ExpressionWrapper, OuterRef, Q

from transactions.models import Booking, BookingStatus, ClarificationCase, LedgerLine

FINAL, PROVISIONAL = BookingStatus.FINAL.value, BookingStatus.PROVISIONAL.value


def group_lines(*, group):
    return LedgerLine.objects.filter(Q(source=group) | Q(destination=group))


def group_has_lines_outside(*, group, valid_from: dt.datetime, valid_until: dt.datetime | None) -> bool:
    """Whether the group has lines before ``valid_from`` or at/after ``valid_until``."""
    lines = group_lines(group=group)
    outside = lines.filter(quarter_start__lt=valid_from)
    if valid_until is not None:
        outside = outside | lines.filter(quarter_start__gte=valid_until)
    return outside.exists()


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


def groups_with_status(queryset):
    """Annotate groups with ``has_provisional``: the group takes part in a provisional booking."""
    provisional = Booking.objects.filter(status=BookingStatus.PROVISIONAL)
    return queryset.annotate(
        has_provisional=ExpressionWrapper(
            Q(Exists(provisional.filter(source=OuterRef("pk"))))
            | Q(Exists(provisional.filter(destination=OuterRef("pk")))),
            output_field=BooleanField(),
        )
    )


def group_status(*, group) -> str:
    """``provisional`` while the group takes part in a provisional booking, else ``final``."""
    provisional = getattr(group, "has_provisional", None)
    if provisional is None:
        provisional = group_bookings(group=group).filter(status=BookingStatus.PROVISIONAL).exists()
    return PROVISIONAL if provisional else FINAL
