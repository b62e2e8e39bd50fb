"""Writing the ledger: bookings, their quarter-hour lines, corrections and clarification cases."""

import datetime as dt
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from balance_groups.audit import actor_label, audit_record
from balance_groups.models import AuditAction, BalanceGroup
from balance_groups.selectors import group_get, groups_locked_for_booking
from core.errors import BkmError, BookingFinal, Conflict, GroupNotValid, InvalidInput, PeriodClosed
from core.ledger import ledger_changed
from core.quarters import from_epoch, require_aligned, to_epoch
from core.splitting import quarter_parts
from core.text import Message, require_clean_text
from transactions.clarify import as_booked, rebook_for
from transactions.models import (
    Booking,
    BookingKind,
    BookingStatus,
    ClarificationCase,
    ClarificationReason,
    ClarificationStatus,
    ClarificationSubject,
    LedgerLine,
)
from transactions.payloads import booking_fields_from_payload, clean_booking
from transactions.selectors import group_bookings


@dataclass(frozen=True)
class BookingResult:
    booking: Booking
    outcome: str  # "created", "replaced" or "unchanged"


def check_bookable(*, source: BalanceGroup, destination: BalanceGroup, start, end) -> None:
    """Raise GroupNotValid or PeriodClosed when the period cannot be booked on either group."""
    for group in (source, destination):
        if group.valid_from > start or (group.valid_until is not None and group.valid_until < end):
            raise GroupNotValid(validity_text(group, start, end))
        if group.closed_until is not None and start < group.closed_until:
            raise PeriodClosed(
                Message(
                    gettext_noop("Group %(code)s is closed until %(closed_until)s; the booking starts %(start)s."),
                    {"code": group.code, "closed_until": group.closed_until, "start": start},
                )
            )


def validity_text(group: BalanceGroup, start: dt.datetime, end: dt.datetime) -> Message:
    """Why a booking of ``[start, end)`` lies outside the group's validity."""
    values = {"code": group.code, "valid_from": group.valid_from, "start": start, "end": end}
    if group.valid_until is None:
        return Message(
            gettext_noop("Group %(code)s is valid from %(valid_from)s on; the booking covers %(start)s to %(end)s."),
            values,
        )
    values["valid_until"] = group.valid_until
    return Message(
        gettext_noop(
            "Group %(code)s is valid from %(valid_from)s to %(valid_until)s; the booking covers %(start)s to %(end)s."
        ),
        values,
    )


def booking_final_text(external_id: str) -> str:
    message = _("Booking %(external_id)s is final; correct it with a reversal booking.")
    return message % {"external_id": repr(external_id)}


def not_replaceable_text(external_id: str, kind: str) -> str:
    return _("Booking %(external_id)s was not entered by hand (kind %(kind)s) and cannot be replaced.") % {
        "external_id": repr(external_id),
        "kind": kind,
    }


def build_lines(booking: Booking) -> list[LedgerLine]:
    """The booking's quarter-hour lines by the exact split (``core.splitting.quarter_parts``)."""
    final = booking.status == BookingStatus.FINAL
    return [
        LedgerLine(
            booking=booking,
            tenant_id=booking.tenant_id,
            source_id=booking.source_id,
            destination_id=booking.destination_id,
            quarter_start=from_epoch(epoch),
            energy_wh=energy,
            is_final=final,
        )
        for epoch, energy in quarter_parts(to_epoch(booking.start), to_epoch(booking.end), booking.energy_wh)
    ]


def _same_content(booking: Booking, fields: dict) -> bool:
    return all(getattr(booking, key) == value for key, value in fields.items())


def clarification_record(*, tenant, actor, error: BkmError, payload: dict, channel: str) -> ClarificationCase:
    """Keep refused input for an operator. Runs in its own transaction so it survives the refusal."""
    with transaction.atomic():
        case = ClarificationCase.objects.create(
            tenant=tenant,
            reason=ClarificationReason.for_error(error),
            detail=error.detail,
            detail_message=error.message.as_json() if error.message else None,
            payload=payload,
            channel=channel,
            created_by=actor_label(actor),
        )
        audit_record(
            tenant=tenant, actor=actor, action=AuditAction.CLARIFICATION_CREATE, obj=case, data={"reason": case.reason}
        )
    return case


def booking_create(
    *,
    tenant,
    actor,
    source,
    destination,
    start: dt.datetime,
    end: dt.datetime,
    energy_wh: int,
    status: str = BookingStatus.PROVISIONAL,
    external_id: str | None = None,
    name: str = "",
    channel: str = "api",
    payload: dict | None = None,
) -> BookingResult:
    """Book energy from ``source`` to ``destination`` over ``[start, end)``.

    Re-sending an ``external_id``: identical content is a no-op, different content replaces a
    provisional booking and is refused for a final one. Input refused because of a closed
    period or a group that is not valid is kept as a clarification case (``payload``).
    """
    fields = {"start": start, "end": end, "energy_wh": energy_wh, "status": status}
    content = clean_booking(
        {**fields, "external_id": external_id, "name": name},
        source=group_get(tenant=tenant, ref=source),
        destination=group_get(tenant=tenant, ref=destination),
    )
    external_id = content.pop("external_id")
    if external_id is not None:
        # Re-sending what is stored already changes nothing, even once the period is closed.
        existing = Booking.objects.filter(tenant=tenant, external_id=external_id).first()
        if existing is not None and _same_content(existing, content):
            return BookingResult(existing, "unchanged")
    try:
        return _booking_write_retrying(tenant=tenant, actor=actor, external_id=external_id, content=content)
    except (GroupNotValid, PeriodClosed) as error:
        if payload is not None:
            clarification_record(tenant=tenant, actor=actor, error=error, payload=payload, channel=channel)
        raise


def _booking_write_retrying(*, tenant, actor, external_id, content) -> BookingResult:
    for attempt in range(2):
        try:
            return _booking_write(tenant=tenant, actor=actor, external_id=external_id, content=content)
        except IntegrityError:
            # A concurrent request created the same external_id between our look-up and insert;
            # the unique constraint said no, so look again (once).
            if attempt or external_id is None:
                raise
    raise AssertionError("unreachable")


@transaction.atomic
def _booking_write(*, tenant, actor, external_id, content) -> BookingResult:
    # Check again under a shared lock: a close committed since the first check must win.
    fresh = groups_locked_for_booking(group_ids=[content["source_id"], content["destination_id"]])
    check_bookable(
        source=fresh[str(content["source_id"])],
        destination=fresh[str(content["destination_id"])],
        start=content["start"],
        end=content["end"],
    )
    existing = None
    if external_id is not None:
        existing = (
            Booking.objects.select_for_update(of=("self",))
            .select_related("source", "destination")
            .filter(tenant=tenant, external_id=external_id)
            .first()
        )
    if existing is not None:
        if _same_content(existing, content):
            return BookingResult(existing, "unchanged")
        if existing.status == BookingStatus.FINAL:
            raise BookingFinal(booking_final_text(external_id))
        if existing.kind != BookingKind.MANUAL:
            raise Conflict(not_replaceable_text(external_id, existing.kind))
        # Replacing also takes the old quarter-hours out of their balances: they must be open too.
        check_bookable(source=existing.source, destination=existing.destination, start=existing.start, end=existing.end)
        old_window = (existing.start, existing.end)
        existing.lines.all().delete()
        for key, value in content.items():
            setattr(existing, key, value)
        existing.updated_by = actor_label(actor)
        existing.finalized_at = timezone.now() if existing.status == BookingStatus.FINAL else None
        existing.save()
        LedgerLine.objects.bulk_create(build_lines(existing))
        audit_record(
            tenant=tenant, actor=actor, action=AuditAction.BOOKING_REPLACE, obj=existing, data=_audit_content(content)
        )
        ledger_changed(tenant_id=tenant.pk, windows=[old_window, (existing.start, existing.end)])
        return BookingResult(existing, "replaced")
    with transaction.atomic():
        booking = Booking.objects.create(
            tenant=tenant,
            external_id=external_id,
            kind=BookingKind.MANUAL,
            created_by=actor_label(actor),
            updated_by=actor_label(actor),
            finalized_at=timezone.now() if content["status"] == BookingStatus.FINAL else None,
            **content,
        )
    LedgerLine.objects.bulk_create(build_lines(booking))
    audit_record(
        tenant=tenant, actor=actor, action=AuditAction.BOOKING_CREATE, obj=booking, data=_audit_content(content)
    )
    ledger_changed(tenant_id=tenant.pk, windows=[(booking.start, booking.end)])
    return BookingResult(booking, "created")


def _audit_content(content: dict) -> dict:
    return {
        key: (value.isoformat() if isinstance(value, dt.datetime) else str(value)) for key, value in content.items()
    }


@transaction.atomic
def booking_finalize(*, booking: Booking, actor) -> Booking:
    """Make a booking entered by hand final (again on a final one: no change)."""
    booking = Booking.objects.select_for_update().get(pk=booking.pk)
    if booking.status == BookingStatus.FINAL:
        return booking
    if booking.kind != BookingKind.MANUAL:  # the engine's bookings follow their inputs' status
        raise Conflict(
            _(
                "Only bookings entered by hand are finalized by hand; one of kind %(kind)s becomes final "
                "by itself once all its inputs are final."
            )
            % {"kind": booking.kind}
        )
    booking.status = BookingStatus.FINAL
    booking.finalized_at = timezone.now()
    booking.updated_by = actor_label(actor)
    booking.save(update_fields=["status", "finalized_at", "updated_by", "updated_at"])
    booking.lines.update(is_final=True)
    audit_record(tenant=booking.tenant, actor=actor, action=AuditAction.BOOKING_FINALIZE, obj=booking)
    ledger_changed(tenant_id=booking.tenant_id, windows=[(booking.start, booking.end)])
    return booking


@transaction.atomic
def bookings_finalize_until(*, group: BalanceGroup, actor, until: dt.datetime) -> int:
    """Finalize every provisional manual booking of ``group`` that ends at or before ``until``."""
    until = require_aligned(until, "until")
    pending = (
        group_bookings(group=group)
        .filter(end__lte=until, status=BookingStatus.PROVISIONAL)
        .filter(kind=BookingKind.MANUAL)
        .order_by("start")
    )
    count = 0
    for booking in pending:
        booking_finalize(booking=booking, actor=actor)
        count += 1
    return count


@transaction.atomic
def booking_reverse(*, booking: Booking, actor) -> Booking:
    """Correct a final booking with a final reversal booking (same period and energy, opposite way)."""
    booking = Booking.objects.select_for_update().select_related("source", "destination").get(pk=booking.pk)
    if booking.kind != BookingKind.MANUAL:
        raise Conflict(
            _("Only bookings entered by hand can be reversed; this one is of kind %(kind)s.") % {"kind": booking.kind}
        )
    if booking.status != BookingStatus.FINAL:
        raise Conflict(_("Only final bookings are reversed; a provisional booking is corrected by re-sending it."))
    if Booking.objects.filter(reverses=booking).exists():
        raise Conflict(_("This booking has been reversed already."))
    check_bookable(source=booking.destination, destination=booking.source, start=booking.start, end=booking.end)
    now = timezone.now()
    reversal = Booking.objects.create(
        tenant_id=booking.tenant_id,
        name=f"Reversal of {booking}"[:200],
        source=booking.destination,
        destination=booking.source,
        start=booking.start,
        end=booking.end,
        energy_wh=booking.energy_wh,
        status=BookingStatus.FINAL,
        kind=BookingKind.REVERSAL,
        reverses=booking,
        created_by=actor_label(actor),
        updated_by=actor_label(actor),
        finalized_at=now,
    )
    # The reversal mirrors the original line by line, so the two cancel exactly per quarter-hour.
    LedgerLine.objects.bulk_create(
        [
            LedgerLine(
                booking=reversal,
                tenant_id=line.tenant_id,
                source_id=line.destination_id,
                destination_id=line.source_id,
                quarter_start=line.quarter_start,
                energy_wh=line.energy_wh,
                is_final=True,
            )
            for line in booking.lines.all()
        ]
    )
    audit_record(
        tenant=booking.tenant,
        actor=actor,
        action=AuditAction.BOOKING_REVERSE,
        obj=reversal,
        data={"reverses": str(booking.pk)},
    )
    ledger_changed(tenant_id=booking.tenant_id, windows=[(booking.start, booking.end)])
    return reversal


def clarification_resolve(
    *, case: ClarificationCase, actor, action: str, note: str = "", corrected: dict | None = None
) -> ClarificationCase:
    """Resolve a case by rebooking its payload (exactly one booking) or dismissing it with a note.

    ``corrected`` is the payload as an operator corrected it (``clarify.corrected_payload``): it is
    rebooked instead, validated like any input, and kept next to the payload as received.
    """
    if action not in ("rebook", "dismiss"):
        raise InvalidInput.for_field("action", _("The action must be 'rebook' or 'dismiss'."))
    if not isinstance(note, str) or len(note) > 2000:
        raise InvalidInput.for_field("note", _("The note must be text of at most 2000 characters."))
    require_clean_text(note, "note", free_text=True)
    if action == "dismiss" and not note.strip():
        raise InvalidInput.for_field("note", _("Say why the case is dismissed."))
    with transaction.atomic():
        case = ClarificationCase.objects.select_for_update().get(pk=case.pk)
        if case.status != ClarificationStatus.OPEN:
            raise Conflict(
                _("This case has been dismissed already.")
                if case.status == ClarificationStatus.DISMISSED
                else _("This case has been rebooked already.")
            )
        if corrected is not None and (action != "rebook" or case.reason == ClarificationReason.UNKNOWN_METERING_POINT):
            raise InvalidInput(_("Only a case that is rebooked from its own payload can be corrected."))
        payload = case.payload if corrected is None else corrected
        booking, outcome = None, None
        if action == "rebook" and case.subject == ClarificationSubject.BOOKING:
            result = booking_create(tenant=case.tenant, actor=actor, **booking_fields_from_payload(payload))
            booking = result.booking
        elif action == "rebook":
            # a text: where it was booked
            outcome = rebook_for(case.subject)(case=as_booked(case, payload), actor=actor)
        case.status = ClarificationStatus.REBOOKED if action == "rebook" else ClarificationStatus.DISMISSED
        case.booking = booking
        case.resolved_at = timezone.now()
        case.resolved_by = actor_label(actor)
        case.resolution_note = f"{outcome} {note}".strip() if isinstance(outcome, str) else note
        case.corrected_payload = corrected
        case.save()
        audit_record(
            tenant=case.tenant,
            actor=actor,
            action=AuditAction(f"clarification.{action}"),
            obj=case,
            data={"note": note} if corrected is None else {"note": note, "corrected": corrected},
        )
    return case
