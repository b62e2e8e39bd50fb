"""Reading the ledger: lines, bookings, clarification cases, and a group's status."""

import datetime as dt
from dataclasses import dataclass

from django.db.models import BooleanField, Exists, ExpressionWrapper, OuterRef, Q
from django.utils.translation import gettext as _

from transactions.models import (
    Booking,
    BookingKind,
    BookingStatus,
    ClarificationCase,
    ClarificationSubject,
    LedgerLine,
)

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


def with_reversed_flag(bookings):
    """Annotate ``is_reversed``: a reversal booking points at the booking (one indexed lookup per row)."""
    return bookings.annotate(is_reversed=Exists(Booking.objects.filter(reverses=OuterRef("pk"))))


def booking_search(
    *,
    tenant,
    external_id: str = "",
    prefix: bool = False,
    group=None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    kind: str = "",
    status: str = "",
):
    """A tenant's bookings by external id (exact or prefix), group (as source or destination),
    overlap with ``[start, end)``, kind and status; newest first, with ``is_reversed``.

    Every filter narrows an indexed column: (tenant, external_id) is unique, (tenant, start),
    (source, start) and (destination, start) are indexed.
    """
    bookings = booking_list(tenant=tenant)
    if external_id:
        lookup = "external_id__startswith" if prefix else "external_id"
        bookings = bookings.filter(**{lookup: external_id})
    if group is not None:
        bookings = bookings.filter(Q(source=group) | Q(destination=group))
    if start is not None:
        bookings = bookings.filter(end__gt=start)
    if end is not None:
        bookings = bookings.filter(start__lt=end)
    if kind:
        bookings = bookings.filter(kind=kind)
    if status:
        bookings = bookings.filter(status=status)
    return with_reversed_flag(bookings).order_by("-start", "kind", "id")


@dataclass(frozen=True)
class BookingActions:
    """What an operator can do with one booking now, or why the action they might expect is not offered."""

    finalize: bool = False
    reverse: bool = False
    reason: str = ""


def _closed_for(booking: Booking) -> bool:
    """A group of the booking is closed over (part of) its period: nothing may be written there any more."""
    return any(
        group.closed_until is not None and booking.start < group.closed_until
        for group in (booking.source, booking.destination)
    )


def _outside_validity(booking: Booking) -> bool:
    return any(
        group.valid_from > booking.start or (group.valid_until is not None and group.valid_until < booking.end)
        for group in (booking.source, booking.destination)
    )


def booking_actions(booking: Booking) -> BookingActions:
    """Finalize and Reverse only where ``booking_finalize`` / ``booking_reverse`` would do it.

    Reads the booking's groups (select them with it) and ``is_reversed`` when annotated.
    """
    if booking.status == BookingStatus.PROVISIONAL:
        if booking.kind != BookingKind.MANUAL:
            return BookingActions()  # final by itself once its inputs are
        if _closed_for(booking):
            return BookingActions(reason=_("period closed"))
        return BookingActions(finalize=True)
    if booking.kind != BookingKind.MANUAL:
        return BookingActions()
    reversed_already = getattr(booking, "is_reversed", None)
    if reversed_already is None:
        reversed_already = Booking.objects.filter(reverses=booking).exists()
    if reversed_already:
        return BookingActions(reason=_("reversed already"))
    if _closed_for(booking):
        return BookingActions(reason=_("period closed"))
    if _outside_validity(booking):
        return BookingActions(reason=_("group not valid for the period"))
    return BookingActions(reverse=True)


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


def case_group_refs(case_subject: str, payload: dict) -> list:
    """The group references a case's payload holds (id, code or metering point)."""
    if case_subject == ClarificationSubject.MEASUREMENT:
        keys = ("group", "metering_point")
    else:
        keys = ("source", "destination")
    return [payload[key] for key in keys if isinstance(payload.get(key), str) and payload[key].strip()]
